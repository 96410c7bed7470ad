"""`python -m pipeline.train`: the train stage, as make runs it (pipeline.stages)."""
import sys

if __name__ == "__main__":
    from pipeline.stages import main

    raise SystemExit(main(["train", *sys.argv[1:]]))

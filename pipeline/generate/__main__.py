"""`python -m pipeline.generate`: the generate stage, as make runs it (pipeline.stages)."""
import sys

if __name__ == "__main__":
    from pipeline.stages import main

    raise SystemExit(main(["generate", *sys.argv[1:]]))

"""`python -m pipeline.encode`: the encode stage, as make runs it (pipeline.stages)."""
import sys

if __name__ == "__main__":
    from pipeline.stages import main

    raise SystemExit(main(["encode", *sys.argv[1:]]))

"""`python -m pipeline.export`: the export stage, as make runs it (pipeline.stages)."""
import sys

if __name__ == "__main__":
    from pipeline.stages import main

    raise SystemExit(main(["export", *sys.argv[1:]]))

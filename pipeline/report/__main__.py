"""`python -m pipeline.report`: the report stage, as make runs it (pipeline.stages)."""
import sys

if __name__ == "__main__":
    from pipeline.stages import main

    raise SystemExit(main(["report", *sys.argv[1:]]))

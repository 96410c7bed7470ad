"""`python -m pipeline.decode`: the decode stage, as make runs it (pipeline.stages)."""
import sys

if __name__ == "__main__":
    from pipeline.stages import main

    raise SystemExit(main(["decode", *sys.argv[1:]]))

"""`python -m pipeline.evaluate`: `make eval` (pipeline.evaluate.heldout)."""
import sys

if __name__ == "__main__":
    from pipeline.evaluate.heldout import main

    raise SystemExit(main(sys.argv[1:]))

"""`python -m pipeline.serve`: the HTTP API and web page (`make serve`, pipeline.serve.api)."""
import sys

if __name__ == "__main__":
    from pipeline.serve.api import main

    raise SystemExit(main(sys.argv[1:]))

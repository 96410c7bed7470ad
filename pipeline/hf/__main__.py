"""`python -m pipeline.hf --config configs/default.yaml [section.key=value ...]`: export the run's trained model
to transformers' format in data/runs/<run>/hf/ (pipeline.hf.to_hf; `make export-hf`)."""
import sys

if __name__ == "__main__":
    import argparse

    from pipeline.config import load_config
    from pipeline.core.device import load_tensorflow
    from pipeline.core.errors import ConfigError, InputError
    from pipeline.hf import export_run

    parser = argparse.ArgumentParser(prog="python -m pipeline.hf",
                                     description="Export a trained run's model to transformers' format (no torch).")
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_intermixed_args(sys.argv[1:])
    try:
        cfg = load_config(args.config, args.overrides)
        if not cfg.paths.train_done.is_file():  # before TensorFlow loads: a refusal is instant
            export_run(cfg.paths, cfg.generate, cfg.name)
        load_tensorflow("hf")
        out = export_run(cfg.paths, cfg.generate, cfg.name)
    except (ConfigError, InputError) as exc:
        print(f"hf: error: {exc}", file=sys.stderr)
        raise SystemExit(2)
    print(f"hf: {cfg.paths.checkpoint} -> {out}/ (config.json, model.safetensors, vocab.json, merges.txt, README.md)")

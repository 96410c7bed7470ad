"""The generate stage on the tiny model trained in the tests (conftest `trained`)."""


def test_the_trained_categories_are_kept_with_the_model(trained):
    import json

    cfg, _ = trained
    # Written by train beside the checkpoint, from the training text (tests/test_model.write_encoded).
    assert json.loads((cfg.paths.checkpoint / "categories.json").read_text()) == ["aww", "science"]


def test_a_large_job_is_announced_with_its_size_and_time(trained, tmp_path, capsys):
    import json

    from pipeline.generate import LARGE_JOB, warn_job
    from pipeline.prompts import make_prompt

    cfg, _ = trained
    prompts = [make_prompt("aww", ["dog"], 100_000, "p1")]
    stats = tmp_path / "generate_stats.json"
    assert warn_job(prompts, LARGE_JOB, 0, cfg.paths.checkpoint, stats) == []
    # generate.count=100000 with guidance.compare: 200,000 samples.
    assert warn_job(prompts, 200_000, 0, cfg.paths.checkpoint, stats) == [
        "200,000 samples to make (200,000 planned, 0 already made, guided and unguided passes included); "
        "time unknown until the first batches"]
    stats.write_text(json.dumps({"samples_per_s": 20.0}))
    [line] = warn_job(prompts, 200_002, 2, cfg.paths.checkpoint, stats)
    assert line.endswith("about 2.8 h at the last job's 20 samples/s")
    assert capsys.readouterr().err.splitlines()[-1] == f"generate: warning: {line}"


def test_a_category_the_model_never_saw_is_named_before_generating(trained, tmp_path, capsys):
    from tests.conftest import generate_to, with_generate

    cfg, _ = trained
    job = with_generate(cfg, categories=("aww", "Gardening", "r/cooking"), keyword_sets=(("dog",),), count=1,
                        length=8)
    generate_to(job, cfg.paths.checkpoint, tmp_path / "generated.jsonl")
    assert ("generate: warning: 2 prompt categories are not in the training text, so the model never saw them: "
            "gardening, r-cooking") in capsys.readouterr().err.splitlines()

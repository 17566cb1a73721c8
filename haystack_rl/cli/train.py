"""`haystack-rl train CONFIG.yml [--resume] [--set key.sub=value ...]`: SFT warm start, GRPO, before/after eval."""

from __future__ import annotations

from pathlib import Path

import typer

from haystack_rl.cli.app import app, console, fail, quiet_libraries, user_errors


@app.command("train")
def train_command(
    config: Path | None = typer.Argument(None, help="Training config (YAML), e.g. configs/train_reverse_text.yml"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoints in output_dir"),
    overrides: list[str] = typer.Option([], "--set", help="Override a config value: key.sub=value (repeatable)"),
    allow_modules: list[str] = typer.Option(
        [], "--allow-module", help="Trust this module of yours for YAML loading (repeatable); adds to allow_modules."
    ),
    schema: bool = typer.Option(False, "--schema", help="Print the JSON Schema of training configs and exit."),
) -> None:
    """
    Train a model on an environment: SFT warm start, GRPO, before/after evaluation, plot.

    Several processes: `torchrun --nproc_per_node 2 -m haystack_rl.cli train CONFIG.yml` (DDP; rank 0 reports).
    """
    from haystack_rl.trust import add_working_directory

    if schema:
        import json

        from haystack_rl.training.config import TrainConfig

        console.print_json(json.dumps(TrainConfig.model_json_schema()))
        return
    if config is None:
        raise fail("give a training config (YAML), e.g. haystack-rl train configs/train_reverse_text.yml")
    quiet_libraries()
    add_working_directory()
    with user_errors():
        from haystack_rl.training.cli import RichProgressCallback, eval_table, training_progress
        from haystack_rl.training.config import TrainConfig
        from haystack_rl.training.distributed import is_main_process
        from haystack_rl.training.trainer import Trainer

        settings = TrainConfig.from_yaml(config, overrides=list(overrides))
        settings.allow_modules = [*settings.allow_modules, *allow_modules]
        trainer = Trainer(settings.to_dict())
        if not is_main_process():  # under torchrun the other ranks train silently; rank 0 reports
            trainer.run(resume=resume)
            return
        with training_progress(console) as progress:
            trainer.add_callback(RichProgressCallback(progress))
            result = trainer.run(resume=resume)
    metrics = result["metrics"]
    console.print(eval_table(metrics))
    console.print(f"model: [bold]{result['model_dir']}[/bold]")
    out = Path(settings.output_dir)
    console.print(f"log: {out / 'metrics.jsonl'}   plot: {metrics.get('plot') or '-'}")

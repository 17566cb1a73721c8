"""Train the LLM inside a RAG pipeline: query rewrite -> BM25 -> answer, both LLM steps played by `tiny`.

The pipeline is `pipelines/rag_search_qa.yml` as it is deployed; the environment is that pipeline run once per
question, rewarded for the exact answer, with the retriever's hit as a component-level metric.
Run: python examples/train_rag_pipeline.py [--sft-steps 300] [--grpo-steps 20] [--output runs/rag]
  or haystack-rl train with `env: examples/train_rag_pipeline.py:load_environment`.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path
from typing import Any

import yaml
from haystack.dataclasses import ChatMessage

from haystack_rl.environments.pipeline_env import PipelineEnv
from haystack_rl.rubrics.named import named_rubric
from haystack_rl_envs.search_qa.env import ANSWERS, HELDOUT_QUESTIONS, TRAIN_QUESTIONS

RAG = Path(__file__).resolve().parent.parent / "pipelines" / "rag_search_qa.yml"
STOP_WORDS = set("a an the of in on at to is was were does do did what which who whom how many much when where why "
                 "by for from with and or its it that this".split())  # fmt: skip


def tasks(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """search_qa's questions as the pipeline's tasks: `question` feeds both prompt builders."""
    return [{"id": q["id"], "question": q["prompt"], "answer": q["answer"], "doc_id": q["doc_id"]} for q in questions]


def expert(messages: list[ChatMessage], rng: random.Random) -> str:
    """Rewrites a question into its content words; answers with the recorded answer when the documents hold it."""
    if (messages[0].text or "").startswith("Rewrite"):
        words = re.findall(r"[\w']+", messages[-1].text or "")
        return " ".join(word for word in words if word.lower() not in STOP_WORDS)
    documents, _, question = (messages[-1].text or "").rpartition("Question: ")
    answer = ANSWERS.get(question.strip(), "")
    return f"<answer>{answer if answer and answer in documents else ''}</answer>"


def load_environment(pipeline: str = str(RAG)) -> PipelineEnv:
    """The RAG pipeline as an environment: train on search_qa's training questions, evaluate on the held out."""
    return PipelineEnv(pipeline, ["rewriter", "answerer"], dataset=tasks(TRAIN_QUESTIONS),
                       eval_dataset=tasks(HELDOUT_QUESTIONS), baselines={"expert": expert},
                       rubric=named_rubric(["exact_match"], metrics=["haystack_rl_envs.search_qa.env:retrieval_hit"]),
                       name="rag_search_qa")  # fmt: skip


def deploy(model_dir: str, output: Path) -> Path:
    """The deployed pipeline: the same YAML, both generators pointed at the tuned model."""
    data = yaml.safe_load(RAG.read_text())
    for name in ("rewriter", "answerer"):
        data["components"][name]["init_parameters"]["model"] = model_dir
    output.write_text(yaml.safe_dump(data, sort_keys=False))
    return output


def train_config(sft_steps: int, grpo_steps: int, eval_examples: int, seed: int, output: str) -> dict[str, Any]:
    """The training run: SFT warm start on the expert's demonstrations, then GRPO on both generator calls."""
    return {
        "env": f"{Path(__file__).resolve()}:load_environment", "output_dir": output, "seed": seed,
        "sft": {"steps": sft_steps, "batch": 16, "lr": 2e-3, "max_length": 1024},
        "grpo": {"steps": grpo_steps, "batch": 16, "num_generations": 8, "max_new_tokens": 64, "lr": 2e-5},
        "eval": {"num_examples": eval_examples, "max_new_tokens": 64},
    }  # fmt: skip


def main() -> None:
    from haystack_rl.cli.app import quiet_libraries
    from haystack_rl.cli.pipeline import load_pipeline
    from haystack_rl.deploy import check_deploy
    from haystack_rl.training import Trainer
    from haystack_rl.training.cli import RichProgressCallback, eval_table, training_progress

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--grpo-steps", type=int, default=20)
    parser.add_argument("--eval-examples", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/rag")
    args = parser.parse_args()
    quiet_libraries()
    trainer = Trainer(train_config(args.sft_steps, args.grpo_steps, args.eval_examples, args.seed, args.output))
    with training_progress() as progress:
        trainer.add_callback(RichProgressCallback(progress))
        result = trainer.run()
    from rich.console import Console

    Console().print(eval_table(result["metrics"]))
    deployed = deploy(result["model_dir"], Path(args.output) / "rag_deployed.yml")
    print("deployment differences:", check_deploy(deployed, result["model_dir"]) or "none")
    question = HELDOUT_QUESTIONS[0]["prompt"]
    outputs = load_pipeline(deployed, []).run({"rewrite_prompt": {"question": question},
                                               "answer_prompt": {"question": question}})  # fmt: skip
    print(f"{question} -> {outputs['answerer']['replies'][0].text}")


if __name__ == "__main__":
    main()

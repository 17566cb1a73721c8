"""The search_qa environment: questions over a bundled corpus, a BM25 search tool, an `<answer>` reward."""

from __future__ import annotations

import random
import re
from typing import Any

from haystack import Document, Pipeline, component, default_from_dict, default_to_dict
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.core.serialization import generate_qualified_class_name
from haystack.dataclasses import ChatMessage, ToolCall
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.tools import PipelineTool, Toolset

from haystack_rl import Rollout, ToolEnv
from haystack_rl.environments.tool_env import demonstration_policy
from haystack_rl.rubrics.tool_rewards import token_f1, tool_use_rubric
from haystack_rl_envs.search_qa.corpus import CORPUS, HELDOUT

SYSTEM_PROMPT = (
    "Answer the question using the search tool, which searches a small encyclopedia. Give the final short "
    "answer inside <answer> </answer> tags."
)
SEARCH_PARAMETERS = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "Keywords to search for."}},
    "required": ["query"],
}
#: The training questions (one example per question, ids `d00-0`...) and the held-out eval split.
TRAIN_QUESTIONS = [{"id": f"{doc_id}-{i}", "doc_id": doc_id, "prompt": question, "answer": answer}
                   for doc_id, _, _, questions in CORPUS for i, (question, answer) in enumerate(questions)]  # fmt: skip
HELDOUT_QUESTIONS = [{"id": f"heldout-{i:02d}", "doc_id": doc_id, "prompt": question, "answer": answer}
                     for i, (doc_id, question, answer) in enumerate(HELDOUT)]  # fmt: skip
ANSWERS = {example["prompt"]: example["answer"] for example in TRAIN_QUESTIONS + HELDOUT_QUESTIONS}
_RESULT_ID = re.compile(r"^\[(?P<id>[\w-]+)\]", re.MULTILINE)


def build_document_store() -> InMemoryDocumentStore:
    """An in-memory document store holding the bundled corpus (id, title in meta, text as content)."""
    store = InMemoryDocumentStore()
    store.write_documents([Document(id=doc_id, content=f"{title}. {text}", meta={"title": title})
                           for doc_id, title, text, _ in CORPUS])  # fmt: skip
    return store


def format_documents(documents: list[Document]) -> str:
    """Search results as the tool's text: one `[id] content` line per document."""
    if not documents:
        return "No documents found."
    return "\n".join(f"[{doc.id}] {doc.content}" for doc in documents)


def build_search_tool(store: InMemoryDocumentStore, top_k: int = 3) -> PipelineTool:
    """The `search` tool: a BM25 retrieval pipeline over `store`, exposed with Haystack's `PipelineTool`."""
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=top_k))
    return PipelineTool(
        pipeline,
        name="search",
        description="Search the encyclopedia with keywords; returns the best matching documents.",
        input_mapping={"query": ["retriever.query"]},
        output_mapping={"retriever.documents": "documents"},
        parameters=SEARCH_PARAMETERS,
        outputs_to_string={"source": "documents", "handler": format_documents},
    )


class SearchQATools(Toolset):
    """
    The search_qa tools as a serializable `Toolset`: the `search` tool over the bundled corpus, rebuilt
    from `top_k` when deserialized (so a YAML Agent gets the corpus, not an empty document store).

    Usage example:
    ```python
    from haystack_rl_envs.search_qa.env import SearchQATools

    tools = SearchQATools(top_k=1)
    assert SearchQATools.from_dict(tools.to_dict()).top_k == 1 and tools[0].name == "search"
    ```
    """

    def __init__(self, top_k: int = 3) -> None:
        self.top_k = top_k
        super().__init__(tools=[build_search_tool(build_document_store(), top_k)])

    def to_dict(self) -> dict[str, Any]:
        """Serialize the knobs only (the corpus ships with the package)."""
        return {"type": generate_qualified_class_name(type(self)), "data": {"top_k": self.top_k}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchQATools:
        """Deserialize."""
        return cls(**data.get("data", {}))


@component
class SearchQARetriever:
    """
    BM25 over the bundled corpus, as a pipeline component that serializes by its knobs (the documents ship with the
    package), so a YAML pipeline can retrieve from it: the retriever of `pipelines/rag_search_qa.yml`.

    Usage example:
    ```python
    from haystack_rl_envs.search_qa.env import SearchQARetriever

    documents = SearchQARetriever(top_k=1).run(query="Brellick lighthouse built")["documents"]
    assert "1731" in documents[0].content
    ```
    """

    def __init__(self, top_k: int = 3) -> None:
        self.top_k = top_k
        self._retriever = InMemoryBM25Retriever(document_store=build_document_store(), top_k=top_k)

    @component.output_types(documents=list[Document])
    def run(self, query: str) -> dict[str, Any]:
        """The `top_k` best matching documents (none for an empty query)."""
        if not query.strip():
            return {"documents": []}
        return {"documents": self._retriever.run(query=query)["documents"]}

    def to_dict(self) -> dict[str, Any]:
        """Serialize the knobs only (the corpus ships with the package)."""
        return default_to_dict(self, top_k=self.top_k)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchQARetriever:
        """Deserialize."""
        return default_from_dict(cls, data)


def retrieval_hit(rollout: Rollout) -> float:
    """A pipeline's component-level reward: 1 when its `retriever` returned the question's document."""
    documents = rollout.info.get("outputs", {}).get("retriever", {}).get("documents") or []
    return float(any(document.get("id") == rollout.example.get("doc_id") for document in documents))


def oracle_baseline(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
    """
    Searches with the question, then answers with the question's recorded answer when the search found text
    that holds it (an empty answer for a question of no split, or when the search missed).
    """
    question = next((m.text or "" for m in reversed(messages) if m.is_from("user")), "")
    last = messages[-1]
    if last.is_from("tool") and last.tool_call_result is not None:
        answer = ANSWERS.get(question, "")
        return f"<answer>{answer if answer and answer in str(last.tool_call_result.result) else ''}</answer>"
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="search", arguments={"query": question},
                                                           id="call_0")])  # fmt: skip


def format_only_baseline(messages: list[ChatMessage], rng: random.Random) -> str | ChatMessage:
    """
    A novice with the format but not the skill: searches with two random words of the question, then
    answers with a random word of the results or, half the time, of the question (not using the result).
    """
    question = next((m.text or "" for m in reversed(messages) if m.is_from("user")), "")
    words = re.findall(r"\w+", question) or ["?"]
    last = messages[-1]
    if last.is_from("tool") and last.tool_call_result is not None:
        found = re.findall(r"\w+", _RESULT_ID.sub("", str(last.tool_call_result.result)))
        return f"<answer>{rng.choice(found if found and rng.random() < 0.5 else words)}</answer>"
    query = " ".join(rng.sample(words, min(2, len(words))))
    return ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="search", arguments={"query": query},
                                                           id="call_0")])  # fmt: skip


def no_search_baseline(messages: list[ChatMessage], rng: random.Random) -> str:
    """Answers without searching (a floor: the corpus is fictional)."""
    return "<answer>unknown</answer>"


class SearchQAEnv(ToolEnv):
    """
    Questions about a small bundled fictional corpus; the model gets a BM25 `search` tool (a Haystack
    retrieval pipeline over an `InMemoryDocumentStore`, exposed with `PipelineTool`). The training split asks
    two or three questions of most documents, each about another fact; the eval split is held out (reworded
    questions, and facts no training question asks about). Reward = exact
    match of the final `<answer>` (`correct`, weight 1) plus token F1 (weight `f1_weight`); tool-call counts,
    errors and validity are metrics, and `tool_error_penalty` makes each failed call cost that much (see
    `tool_use_rubric`).

    Usage example:
    ```python
    from haystack_rl_envs.search_qa import SearchQAEnv

    env = SearchQAEnv(top_k=1)
    result = env.tools[0].invoke(query="Brellick lighthouse built")
    assert "1731" in result["documents"][0].content
    ```
    """

    name = "search_qa"
    description = "questions over a bundled corpus with a BM25 search tool, answer inside <answer> tags"

    def __init__(
        self,
        top_k: int = 3,
        f1_weight: float = 0.0,
        max_turns: int = 6,
        tool_timeout_s: float = 10.0,
        tool_error_penalty: float = 0.0,
    ) -> None:
        self.top_k, self.f1_weight, self.tool_error_penalty = top_k, f1_weight, tool_error_penalty
        rubric = tool_use_rubric("exact_match", tool_error_penalty).add(token_f1, f1_weight)
        super().__init__(tools=SearchQATools(top_k), dataset=TRAIN_QUESTIONS, eval_dataset=HELDOUT_QUESTIONS,
                         system_prompt=SYSTEM_PROMPT, rubric=rubric, max_turns=max_turns,
                         tool_timeout_s=tool_timeout_s)  # fmt: skip

    def baselines(self) -> dict[str, Any]:
        """`oracle` (searches with the question, answers from the top document), `format_only`, `no_search`."""
        return {"oracle": oracle_baseline, "format_only": format_only_baseline, "no_search": no_search_baseline}

    def demonstrate(self, example: dict[str, Any], seed: int, quality: str = "expert") -> list[ChatMessage]:
        """
        A transcript for SFT warm start: `expert` (the oracle's search and answer), `noisy` (a novice reply
        30% of the time) or `format-only` (the `format_only` baseline: right syntax, no skill).
        """
        return self.play_scripted(demonstration_policy(quality, oracle_baseline, format_only_baseline), example, seed)


def load_environment(**kwargs: Any) -> SearchQAEnv:
    """Build the environment; see `SearchQAEnv` for the arguments."""
    return SearchQAEnv(**kwargs)

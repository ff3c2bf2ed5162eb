"""The graph, and the tour ``python -m examples.langgraph_chat`` takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from typing_extensions import TypedDict

from journal.integrations.langgraph import JournalSaver


class State(TypedDict):
    """The conversation: ``add_messages`` appends each turn's messages."""

    messages: Annotated[list[AnyMessage], add_messages]


def build_graph(model: BaseChatModel) -> StateGraph[State]:
    """One node: the model answers the conversation so far."""

    def chat(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(State)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", END)
    return builder


def scripted(*responses: str) -> BaseChatModel:
    """A model that needs no network: it answers from a script."""
    return FakeListChatModel(responses=list(responses))


def tour(root: str, thread_id: str = "user-123", say: Callable[[str], None] = print) -> list[str]:
    """Two turns, time travel, a fork; return the thread's final messages' text."""
    saver = JournalSaver(root)
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    graph: CompiledStateGraph[State, None, State, State] = build_graph(
        scripted("Hello Ada.", "You told me: Ada.", "You told me: Cy.")
    ).compile(checkpointer=saver)

    def show(title: str, cfg: RunnableConfig) -> None:
        say(f"{title}:")
        for m in graph.get_state(cfg).values.get("messages", []):
            say(f"  {m.type}: {m.content}")

    if graph.get_state(config).values:
        # The thread exists already (an earlier run, maybe another process): go on.
        graph = build_graph(scripted("Still here.")).compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("Are you still there?")]}, config)
        show("resumed", config)
        return [str(m.content) for m in graph.get_state(config).values["messages"]]

    graph.invoke({"messages": [HumanMessage("Hi, I am Ada.")]}, config)
    graph.invoke({"messages": [HumanMessage("What is my name?")]}, config)
    show("after two turns", config)

    history = list(graph.get_state_history(config))  # newest first
    first = next(s for s in history if len(s.values.get("messages", [])) == 2)
    show("time travel to the end of the first turn", first.config)

    ada = first.values["messages"][0]
    forked = graph.update_state(first.config, {"messages": [HumanMessage("Hi, I am Cy.", id=ada.id)]})
    graph.invoke({"messages": [HumanMessage("What is my name?")]}, forked)
    show("after the fork", config)
    say(f"{len(list(graph.get_state_history(config)))} checkpoints on thread {thread_id}")
    return [str(m.content) for m in graph.get_state(config).values["messages"]]

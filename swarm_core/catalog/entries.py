"""The built-in command catalog: one entry per command an agent may use.

Adding a command: add its :class:`Command` here, then one function bound to it
with ``@implements("name")`` in a module of ``agents/commands/`` (see the
README's architecture section). Descriptions are the seed's short labels;
argument descriptions are what the model sees between ``<...>`` in its prompt.
"""

from __future__ import annotations

import swarm_core.catalog.episodes as ep
from swarm_core.catalog.model import Arg, Catalog, Command, Port

_FILE = Arg("file", "path in the workspace", target=True)
_TEXT = Arg("text", "the content")
_KEY = Arg("key", "agent id", target=True)

AGENT_COMMANDS = (
    Command("start_agent", "Start GPT Agent",
            (Arg("name", "name", target=True), Arg("task", "short task description"),
             Arg("prompt", "instructions", optional=True), Arg("role", "role (optional)", optional=True),
             Arg("budget", "max tokens for it and its sub-agents, from your own budget (optional)",
                 optional=True, max_length=9, pattern="^[0-9]+$")),
            frozenset({Port.SUPERVISOR}), ep.delegation()),
    Command("message_agent", "Message GPT Agent", (_KEY, Arg("message", "message")),
            frozenset({Port.PEERS}), ep.MESSAGE_AGENT),
    Command("list_agents", "List GPT Agents", (), frozenset({Port.SUPERVISOR}), ep.LIST_AGENTS),
    Command("delete_agent", "Delete GPT Agent", (_KEY,), frozenset({Port.SUPERVISOR}), ep.DELETE_AGENT),
)

MEMORY_COMMANDS = (
    Command("memory_add", "Memory Add", (Arg("text", "text to remember"),),
            frozenset({Port.MEMORY}), ep.MEMORY_ADD),
    # k is a string in the answer schema: the implementation accepts "3" and 3 alike
    Command("memory_search", "Memory Search",
            (Arg("query", "what to look for"), Arg("k", "number of results", optional=True)),
            frozenset({Port.MEMORY}), ep.MEMORY_SEARCH),
)

FILE_COMMANDS = (
    Command("read_file", "Read file", (_FILE,), frozenset({Port.WORKSPACE}), ep.READ_FILE),
    Command("write_to_file", "Write to file", (_FILE, _TEXT), frozenset({Port.WORKSPACE}), ep.WRITE_TO_FILE),
    Command("append_to_file", "Append to file", (_FILE, _TEXT), frozenset({Port.WORKSPACE}),
            ep.APPEND_TO_FILE),
    Command("delete_file", "Delete file", (_FILE,), frozenset({Port.WORKSPACE}), ep.DELETE_FILE),
    Command("search_files", "Search Files", (Arg("directory", "folder in the workspace ('.' for all)", target=True),),
            frozenset({Port.WORKSPACE}), ep.SEARCH_FILES),
    Command("execute_python_file", "Execute Python File", (Arg("file", "path of a .py file in the workspace"),),
            frozenset({Port.WORKSPACE, Port.HEARTBEAT}), ep.EXECUTE_PYTHON_FILE),
)

WEB_COMMANDS = (  # no backend is configured: both answer so (no ports needed)
    Command("google", "Google Search", (Arg("input", "search query"),)),
    Command("browse_website", "Browse Website", (Arg("url", "address", target=True), Arg("question", "what to look for"))),
)

CONTROL_COMMANDS = (
    Command("do_nothing", "Do Nothing (wait for your inbox)", (), frozenset({Port.INBOX})),
    Command("task_complete", "Task Complete (Shutdown)", (Arg("reason", "result or reason"),)),
)

CATALOG = Catalog(AGENT_COMMANDS + MEMORY_COMMANDS + FILE_COMMANDS + WEB_COMMANDS + CONTROL_COMMANDS)

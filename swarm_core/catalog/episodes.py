"""The worked episodes of the catalog: a short task solved step by step with one command.

A small base model learns from them what a good answer looks like (the
gateway's ``fewshot.py`` renders them; this module is data only). Each ends
with ``task_complete``: "work done → finish" is learnt from examples, not
from instructions.
"""

from __future__ import annotations

from swarm_core.catalog.model import Episode, Step


def _finish(reason: str) -> Step:
    return Step("task_complete", {"reason": reason}, "The task is done, so I finish with the result.")


def delegation(child: str = "poet") -> Episode:
    """The manager's episode: start ``child``, wait for its result, finish with it."""
    return Episode("lead", "Break the goal into subtasks and delegate them.",
                   "Get a short poem about rain written into rain.txt", (
        Step("start_agent", {"name": child, "task": "Write a short poem about rain into rain.txt",
                             "prompt": "Write the poem into rain.txt, then finish."},
             f"A {child} agent should write the poem.", f"started agent {child}"),
        Step("do_nothing", {}, f"{child} is working; I wait for its result.",
             "No action performed. New messages are in your INBOX.",
             instead=(Step("list_agents", {}, f"I check how {child} is doing.",
                           f'[{{"id": "{child}", "status": "done"}}]'),)),
        Step("task_complete", {"reason": f"{child} wrote the poem into rain.txt"},
             f"{child} finished the poem, so the goal is reached.",
             inbox=(f"{child} finished: the poem is in rain.txt",)),
    ))


# Its file and words differ from every demo's, so a model that copies the example is seen doing so;
# it finishes with "wrote FILE": a sentence like "The haiku is in autumn.txt" was copied into poems.
WRITE_TO_FILE = Episode("writer", "Write what you are asked into the workspace.",
                        "Write a haiku about snow into snow.txt", (
    Step("write_to_file", {"file": "snow.txt",
                           "text": "White flakes drift and fall\nthe garden sleeps under snow\nfootprints fade by noon"},
         "I write the haiku into the file.", "wrote 80 characters to snow.txt"),
    _finish("wrote snow.txt"),
))

APPEND_TO_FILE = Episode("scribe", "Keep the log file up to date.", "Add the line 'step 2 done' to log.txt", (
    Step("append_to_file", {"file": "log.txt", "text": "step 2 done\n"},
         "I append the line to the log.", "appended 12 characters to log.txt"),
    _finish("log.txt now ends with 'step 2 done'"),
))

READ_FILE = Episode("reader", "Read files and report what they say.", "Tell me what notes.txt says", (
    Step("read_file", {"file": "notes.txt"}, "I read the file first.", "Buy milk. Call Ana at 5."),
    _finish("notes.txt says: Buy milk. Call Ana at 5."),
))

SEARCH_FILES = Episode("finder", "Find files in the workspace.", "List the files in the docs directory", (
    Step("search_files", {"directory": "docs"}, "I list the directory.", "docs/intro.md\ndocs/usage.md"),
    _finish("docs holds intro.md and usage.md"),
))

DELETE_FILE = Episode("cleaner", "Keep the workspace tidy.", "Remove old.txt", (
    Step("delete_file", {"file": "old.txt"}, "I delete the file.", "deleted old.txt"),
    _finish("old.txt is deleted"),
))

EXECUTE_PYTHON_FILE = Episode("runner", "Run Python files and report.", "Run hello.py and report its output", (
    Step("execute_python_file", {"file": "hello.py"}, "I run the file.", "hello world"),
    _finish("hello.py printed: hello world"),
))

MEMORY_ADD = Episode("archivist", "Remember important facts.", "Remember that the demo is on Friday", (
    Step("memory_add", {"text": "The demo is on Friday"}, "I store the fact.", "remembered as item 3"),
    _finish("I will remember that the demo is on Friday"),
))

MEMORY_SEARCH = Episode("archivist", "Recall facts from memory.", "When is the demo?", (
    Step("memory_search", {"query": "demo date", "k": "3"}, "I search my memory.",
         '[{"score": 0.91, "text": "The demo is on Friday"}]'),
    _finish("The demo is on Friday"),
))

MESSAGE_AGENT = Episode("lead", "Coordinate the other agents.", "Ask researcher how far it got", (
    Step("message_agent", {"key": "researcher", "message": "How far did you get?"},
         "I ask researcher directly.", "researcher replied: half of the sources are read"),
    _finish("researcher has read half of the sources"),
))

LIST_AGENTS = Episode("lead", "Coordinate the other agents.", "Report which sub-agents are running", (
    Step("list_agents", {}, "I list my sub-agents.", '[{"id": "poet", "status": "running"}]'),
    _finish("poet is running"),
))

DELETE_AGENT = Episode("lead", "Coordinate the other agents.", "Stop the agent poet", (
    Step("delete_agent", {"key": "poet"}, "I stop poet.", "poet stopped"),
    _finish("poet is stopped"),
))

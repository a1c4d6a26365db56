"""Adding a command is one catalog entry plus one function: schema, few-shot prompt, config and dispatch know it."""

from __future__ import annotations

import json

import pytest

from agents.commands.binding import implements
from agents.commands.context import CommandContext
from agents.commands.registry import CommandTable, discover
from orchestrator.config import parse_config
from orchestrator.gateway import fewshot, schema
from swarm_core.catalog import CATALOG, Arg, Command, Episode, Step
from swarm_core.errors import ConfigError

# the one catalog entry ...
ROLL_DICE = Command(
    "roll_dice", "Roll dice",
    (Arg("sides", "number of sides", type="integer"), Arg("label", "what the roll is for", optional=True)),
    episode=Episode("gamer", "Play board games.", "Roll a six-sided die", (
        Step("roll_dice", {"sides": 6}, "I roll the die.", "rolled 4"),
        Step("task_complete", {"reason": "I rolled a 4"}, "The die is rolled, so I finish."),
    )))
WITH_DICE = CATALOG.with_commands([ROLL_DICE])


# ... and the one function
@implements("roll_dice", catalog=WITH_DICE)
def roll_dice(ctx: CommandContext, sides: int, label: str = "") -> str:
    """A fixed roll (the highest face), so the test can check the observation."""
    return f"rolled {sides}" + (f" for {label}" if label else "")


ROLE = ["roll_dice", "task_complete"]
YAML = """\
name: games
goal: "Roll a die"
root: gamer
agents:
  gamer:
    role: "Play."
    commands: [roll_dice, task_complete]
"""


def test_the_answer_schema_has_the_new_command_with_its_types():
    """The schema gets a roll_dice branch: sides an integer and required, label an optional string."""
    sch = schema.answer_schema(ROLE, catalog=WITH_DICE)
    branch = sch["properties"]["command"]["anyOf"][0]["properties"]["args"]
    assert branch["properties"] == {"sides": {"type": "integer"}, "label": {"type": "string", "maxLength": 200}}
    assert branch["required"] == ["sides"]
    answer = {"thoughts": dict.fromkeys(schema.THOUGHT_KEYS, "t"),
              "command": {"name": "roll_dice", "args": {"sides": 6}}}
    assert schema.validate(answer, sch) == []
    assert schema.validate({**answer, "command": {"name": "roll_dice", "args": {"sides": "6"}}}, sch)
    with pytest.raises(ValueError):
        schema.answer_schema(["roll_dice"])  # the built-in catalog does not have it


def test_the_few_shot_prompt_lists_and_shows_the_new_command():
    """The commands line names roll_dice with its arguments and its episode becomes a worked example."""
    assert fewshot.commands_line(ROLE, WITH_DICE) == "Commands: roll_dice(sides, label), task_complete(reason)"
    prompt = fewshot.build_prompt({"task": "Roll for initiative"}, ROLE, catalog=WITH_DICE)
    answers = [json.loads(line[len("Answer: "):]) for line in prompt.splitlines() if line.startswith("Answer: {")]
    assert {"name": "roll_dice", "args": {"sides": 6}} in [a["command"] for a in answers]
    compact = schema.compact_schema(ROLE, catalog=WITH_DICE)
    assert all(schema.validate(a, compact) == [] for a in answers)


def test_config_validation_accepts_the_new_command():
    """A role may list roll_dice when the config is checked against the catalog that has it."""
    assert parse_config(YAML, catalog=WITH_DICE).agents["gamer"].commands == tuple(ROLE)
    with pytest.raises(ConfigError, match="unknown command\\(s\\) roll_dice"):
        parse_config(YAML)


def test_dispatch_runs_the_new_command():
    """A table of the built-in implementations plus roll_dice dispatches it, checks its args and describes it."""
    table = CommandTable(WITH_DICE, [*discover(), roll_dice])
    ctx = CommandContext(agent_id="gamer", role="Play.", ports=None)
    assert table.dispatch(ctx, "roll_dice", {"sides": 20, "label": "initiative"}, set(ROLE)).text == \
        "rolled 20 for initiative"
    assert "missing sides" in table.dispatch(ctx, "roll_dice", {}, set(ROLE)).text
    assert table.describe(ROLE)[0] == \
        '1. Roll dice: "roll_dice", args: "sides": "<number of sides>", "label": "<what the roll is for>"'

#!/usr/bin/env python3
"""Render chat conversations with the Nemotron 3 Nano chat template into a test fixture.

Writes tests/sft/fixtures/chat_template_cases.json, which sft_chat_template_test compares the
native renderer (plugins/stage_sft/src/chat) against. CI has neither transformers nor this script's
output regenerated: the JSON is committed. Run it again after changing the cases:

    python3 tests/sft/make_chat_fixture.py            # rewrites the fixture
    python3 tests/sft/make_chat_fixture.py --check    # fails if the committed fixture is stale

Rendering goes through transformers' render_jinja_template (the function apply_chat_template calls
once it has a template; it needs no tokenizer files and no torch) when transformers is importable,
else through jinja2 configured the way transformers configures it.

One normalisation happens before rendering, in both paths and in the C++ renderer: a tool call whose
`arguments` is a JSON string (the OpenAI wire form) is parsed into an object, because the template
iterates `arguments|items`, which raises on a string.
"""
import argparse
import copy
import datetime
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATE = HERE / "fixtures" / "nemotron3_nano_chat_template.jinja"
OUTPUT = HERE / "fixtures" / "chat_template_cases.json"

# Tool schemas. Keys are deliberately not in alphabetical order: the template walks them in the
# order the record lists them.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "  Current weather for a city.\n",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich "},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5, "nullable": True},
                "fields": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
SEARCH_TOOL = {
    "name": "search_docs",
    "description": "Recherche dans la documentation — 文档搜索",
    "parameters": {
        "properties": {
            "query": {"type": ["string", "null"], "title": "Query"},
            "filters": {
                "type": "object",
                "properties": {"lang": {"type": "string"}, "since": {"type": "number"}},
            },
        },
        "required": ["query", "filters"],
    },
}
NO_PARAM_TOOL = {"type": "function", "function": {"name": "get_time"}}

ALL_TOOLS = [WEATHER_TOOL, SEARCH_TOOL, NO_PARAM_TOOL]

WEATHER_CALL_OBJECT = {
    "id": "call_1",
    "type": "function",
    "function": {
        "name": "get_weather",
        "arguments": {
            "city": "São Paulo",
            "days": 3,
            "ratio": 0.25,
            "tiny": 1e-05,
            "huge": 1e16,
            "round": 100.0,
            "neg_zero": -0.0,
            "metric": True,
            "verbose": False,
            "note": None,
            "fields": ["temp", "wind", 7, {"deep": [1, 2.5, None]}],
            "options": {"zone": "America/Sao_Paulo", "alerts": {"enabled": True, "levels": [1, 2]},
                        "label": "naïve \"quoted\" \\ tab\tbell\u0007 ✓ 🌧"},
            "multiline": "line one\nline two\n",
        },
    },
}
WEATHER_CALL_STRING = {
    "id": "call_2",
    "type": "function",
    "function": {
        "name": "get_weather",
        "arguments": json.dumps({"city": "Oslo", "days": 2, "fields": ["temp"],
                                 "options": {"unit": "celsius", "precise": False}}),
    },
}
TIME_CALL_BARE = {"name": "get_time", "arguments": {}}
SEARCH_CALL = {"type": "function", "function": {"name": "search_docs",
                                                "arguments": {"query": "chat templates", "filters": {"lang": "en"}}}}


def case(name, messages, tools=None, enable_thinking=True, add_generation_prompt=False,
         truncate_history_thinking=None):
    record = {"messages": messages}
    if tools is not None:
        record["tools"] = tools
    options = {"enable_thinking": enable_thinking, "add_generation_prompt": add_generation_prompt}
    if truncate_history_thinking is not None:
        options["truncate_history_thinking"] = truncate_history_thinking
    return {"name": name, "record": record, "options": options}


def user(text):
    return {"role": "user", "content": text}


def assistant(text, reasoning=None, tool_calls=None, **extra):
    message = {"role": "assistant", "content": text}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    message.update(extra)
    return message


def tool(text):
    return {"role": "tool", "content": text}


SYSTEM = {"role": "system", "content": "You are a careful assistant."}


def cases():
    return [
        case("user_only", [user("Hello!")]),
        case("user_only_generation_prompt_thinking", [user("Hello!")], add_generation_prompt=True),
        case("user_only_generation_prompt_no_thinking", [user("Hello!")], enable_thinking=False,
             add_generation_prompt=True),
        case("system_user_assistant", [SYSTEM, user("What is 2+2?"), assistant("4")]),
        case("no_system_user_assistant", [user("What is 2+2?"), assistant("  4\n")]),
        case("multi_turn_history_no_reasoning",
             [SYSTEM, user("Hi"), assistant("Hello! How can I help?"), user("Tell me a joke."),
              assistant("Why did the chicken cross the road?")]),
        case("reasoning_last_turn",
             [user("Is 17 prime?"), assistant("Yes, 17 is prime.", reasoning="17 has no divisors but 1 and 17.")]),
        case("reasoning_in_history_dropped",
             [SYSTEM, user("Is 17 prime?"), assistant("Yes.", reasoning="Check 2, 3: no."),
              user("And 21?"), assistant("No, 21 = 3 * 7.", reasoning="21 / 3 = 7.")]),
        case("reasoning_in_history_kept",
             [SYSTEM, user("Is 17 prime?"), assistant("Yes.", reasoning="Check 2, 3: no."),
              user("And 21?"), assistant("No, 21 = 3 * 7.", reasoning="21 / 3 = 7.")],
             truncate_history_thinking=False),
        case("reasoning_whitespace_only_is_ignored",
             [user("Hi"), assistant("Hello.", reasoning=" \n\t ")]),
        case("reasoning_alias_field",
             [user("Hi"), {"role": "assistant", "content": "Hello.", "reasoning": "Greet back."}]),
        case("inline_think_in_content",
             [user("Q1"), assistant("<think>\nold thought\n</think>\nold answer"), user("Q2"),
              assistant("<think>\nnew thought\n</think>\nnew answer  ")]),
        case("empty_assistant_in_history",
             [user("Q1"), assistant(""), user("Q2"), assistant("A2")]),
        case("enable_thinking_off_without_generation_prompt",
             [user("Hi"), assistant("Hello.", reasoning="Say hello.")], enable_thinking=False),
        case("tools_with_system", [SYSTEM, user("Weather in Zürich?")], tools=ALL_TOOLS,
             add_generation_prompt=True),
        case("tools_without_system", [user("What time is it?")], tools=[NO_PARAM_TOOL, SEARCH_TOOL]),
        case("tools_empty_list", [user("Hi"), assistant("Hello.")], tools=[]),
        case("tool_call_object_arguments",
             [SYSTEM, user("Weather in São Paulo?"),
              assistant(None, reasoning="I should call the weather tool.", tool_calls=[WEATHER_CALL_OBJECT]),
              tool('{"temp": 24, "sky": "rain"}'), assistant("It is 24 °C and raining.")], tools=ALL_TOOLS),
        case("tool_call_string_arguments",
             [user("Weather in Oslo?"), assistant("", tool_calls=[WEATHER_CALL_STRING]),
              tool("temp=3"), assistant("3 degrees.")], tools=[WEATHER_TOOL]),
        case("tool_call_with_content",
             [user("Time and weather?"),
              assistant("Let me check both.", tool_calls=[TIME_CALL_BARE, WEATHER_CALL_STRING])],
             tools=ALL_TOOLS),
        case("several_consecutive_tool_responses",
             [user("Time, weather and docs?"),
              assistant(None, tool_calls=[TIME_CALL_BARE, WEATHER_CALL_OBJECT, SEARCH_CALL]),
              tool("12:00"), tool("sunny"), tool("no results"),
              assistant("Noon, sunny, nothing in the docs.")], tools=ALL_TOOLS),
        case("tool_response_last_with_generation_prompt",
             [user("Time?"), assistant(None, tool_calls=[TIME_CALL_BARE]), tool("12:00")],
             tools=[NO_PARAM_TOOL], add_generation_prompt=True),
        case("tool_call_in_history_reasoning_dropped",
             [SYSTEM, user("Time?"),
              assistant("Checking.", reasoning="Need the clock.", tool_calls=[TIME_CALL_BARE]),
              tool("12:00"), assistant("It is noon.", reasoning="Report it."),
              user("Thanks!"), assistant("You're welcome.")], tools=[NO_PARAM_TOOL]),
        case("tool_call_in_history_reasoning_kept",
             [SYSTEM, user("Time?"),
              assistant("Checking.", reasoning="Need the clock.", tool_calls=[TIME_CALL_BARE]),
              tool("12:00"), assistant("It is noon."), user("Thanks!"), assistant("You're welcome.")],
             tools=[NO_PARAM_TOOL], truncate_history_thinking=False),
        case("tool_call_history_unclosed_think",
             [user("Q"), assistant("before <think> dangling", tool_calls=[TIME_CALL_BARE]), tool("12:00"),
              user("Q2"), assistant("A2")], tools=[NO_PARAM_TOOL]),
        case("tool_call_history_inline_think",
             [user("Q"), assistant("<think>plan</think> calling now ", tool_calls=[TIME_CALL_BARE]),
              tool("12:00"), user("Q2"), assistant("A2")], tools=[NO_PARAM_TOOL]),
        case("tool_message_first",
             [tool("orphan result"), user("What was that?"), assistant("A tool result.")]),
        case("system_message_mid_conversation",
             [user("Hi"), {"role": "system", "content": "Be brief."}, assistant("Hi.")]),
        case("unicode_everywhere",
             [{"role": "system", "content": "Réponds en français. 日本語も可。"},
              user("Привет! 👋 مرحبا"), assistant("Bonjour ! 🎉 ça va ?", reasoning="Langue : français — 好。"),
              user("Emoji test: 🧪\u200b"), assistant("✓ \u00a0done\u00a0")]),
        case("user_content_whitespace_kept",
             [user("  padded user text \n"), assistant("\n\nanswer\n\n")], add_generation_prompt=False),
        case("generation_prompt_after_assistant",
             [user("Hi"), assistant("Hello."), user("More?")], add_generation_prompt=True, enable_thinking=False),
    ]


def normalise(messages):
    """String tool-call arguments become objects (see the module docstring)."""
    messages = copy.deepcopy(messages)
    for message in messages:
        for call in message.get("tool_calls") or []:
            target = call.get("function", call)
            if isinstance(target.get("arguments"), str):
                target["arguments"] = json.loads(target["arguments"])
    return messages


def jinja_renderer(template_text):
    """jinja2 configured as transformers' _compile_jinja_template configures it."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    compiled = env.from_string(template_text)

    def render(messages, tools, add_generation_prompt, **kwargs):
        # transformers fills reasoning_content from the older names `thinking` and `reasoning`.
        aliased = []
        for message in messages:
            reasoning = next((message[k] for k in ("reasoning_content", "thinking", "reasoning")
                              if message.get(k) is not None), None)
            if reasoning is not None:
                message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
            aliased.append(message)
        return compiled.render(messages=aliased, tools=tools, add_generation_prompt=add_generation_prompt, **kwargs)

    return render, "jinja2 " + jinja2.__version__


def transformers_renderer(template_text):
    import transformers
    from transformers.utils.chat_template_utils import render_jinja_template

    def render(messages, tools, add_generation_prompt, **kwargs):
        rendered, _ = render_jinja_template(conversations=[messages], tools=tools, chat_template=template_text,
                                            add_generation_prompt=add_generation_prompt, **kwargs)
        return rendered[0]

    return render, "transformers " + transformers.__version__


def build():
    template_text = TEMPLATE.read_text(encoding="utf-8")
    try:
        render, engine = transformers_renderer(template_text)
    except ImportError:
        render, engine = jinja_renderer(template_text)
    out = []
    for item in cases():
        options = item["options"]
        kwargs = {"enable_thinking": options["enable_thinking"]}
        if "truncate_history_thinking" in options:
            kwargs["truncate_history_thinking"] = options["truncate_history_thinking"]
        item["rendered"] = render(normalise(item["record"]["messages"]), item["record"].get("tools"),
                                  options["add_generation_prompt"], **kwargs)
        out.append(item)
    return out, engine


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed fixture, write nothing")
    args = parser.parse_args()
    items, engine = build()
    names = [i["name"] for i in items]
    if len(set(names)) != len(names):
        sys.exit("duplicate case names")
    text = json.dumps(items, ensure_ascii=False, indent=1) + "\n"
    if args.check:
        if OUTPUT.read_text(encoding="utf-8") != text:
            sys.exit(f"{OUTPUT} differs from what {engine} renders now")
        print(f"{OUTPUT.name}: {len(items)} cases match ({engine})")
        return
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(items)} cases, {engine})")


if __name__ == "__main__":
    main()

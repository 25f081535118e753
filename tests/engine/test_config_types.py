"""Every TrainConfig value is checked against its field's annotation: a value of the wrong type is a
ValueError naming the key and the type asked for (a JSON "epochs": "3" used to fail deep inside training)."""
import dataclasses
import typing

import pytest

from srpose_fast.engine.config import TrainConfig, config_from_dict

FIELDS = typing.get_type_hints(TrainConfig)


def wrong_value(hint):
    """A JSON value no field of this annotation takes."""
    text = str(hint)
    if "tuple" in text:
        return {"a": 1}  # neither a list nor null
    if "bool" in text:
        return "yes"
    if "int" in text or "float" in text:
        return "3"
    return 3  # strings


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(TrainConfig)])
def test_a_value_of_the_wrong_type_names_its_key(name):
    value = wrong_value(FIELDS[name])
    with pytest.raises(ValueError, match=rf"my\.json: config key '{name}' must be .*, got {value!r}"):
        config_from_dict({name: value}, source="my.json")


def test_the_messages_say_what_is_expected():
    cases = {"epochs": ("3", "an int, got '3' (str)"), "lr": ("fast", "a number, got 'fast'"),
             "flip_test": (1, "true or false, got 1 (int)"), "input_size": ([256, "192"], "a list of 2 ints or null"),
             "lr_steps": (170, "a list of ints, got 170"), "grad_clip": ("none", "a number or null"),
             "batch_size": (True, "an int, got True (bool)")}
    for key, (value, message) in cases.items():
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            config_from_dict({key: value})


def test_json_forms_of_the_right_type_pass():
    config = config_from_dict({"lr": 1, "input_size": [256, 192], "lr_steps": [5, 8], "no_weight_decay": ["bias"],
                               "grad_clip": None, "progress": None, "keypoint_set": "mpii"})
    assert config.lr == 1 and config.input_size == (256, 192) and config.lr_steps == (5, 8)

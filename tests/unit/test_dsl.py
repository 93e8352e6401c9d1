import pytest

from comfykit_batch.dsl import OutputMarker, ParamMarker, parse_title
from comfykit_batch.errors import WorkflowError


def test_plain_words_are_ignored_and_markers_parsed_in_order():
    assert parse_title("Size, $width!, $height") == [
        ParamMarker("width", "width", required=True, upload=False),
        ParamMarker("height", "height", required=False, upload=False),
    ]


@pytest.mark.parametrize(
    "title, expected",
    [
        ("$prompt.text!", ParamMarker("prompt", "text", True, False)),
        ("$~input_image!", ParamMarker("input_image", "input_image", True, True)),
        ("$img.~image!", ParamMarker("img", "image", True, True)),
        ("$model.ckpt_name", ParamMarker("model", "ckpt_name", False, False)),
        ("$seed:the noise seed", ParamMarker("seed", "seed", False, False, "the noise seed")),
        ("$steps!:how many", ParamMarker("steps", "steps", True, False, "how many")),
    ],
)
def test_marker_forms(title, expected):
    assert parse_title(title) == [expected]


def test_output_marker():
    assert parse_title("Save, $output.final") == [OutputMarker("final")]


def test_malformed_marker_names_node_and_title():
    with pytest.raises(WorkflowError, match=r"node 7: cannot read the parameter marker '\$a\.b\.c'"):
        parse_title("$a.b.c", "7")

"""Translated messages for the codes the Django-free linkage modules raise: a model file that
cannot be loaded (``model.ModelFileError``) and a list that cannot be read (``lists``).

Those modules run without Django (the bench runs them on FEBRL and Spark), so they carry a code
and parameters; the messages a user reads are worded here, through gettext.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

MODEL_ERRORS: dict[str, Any] = {
    "not_json": _("The file is not a model file: it is not valid JSON."),
    "not_a_model": _("The file is not a Pilar linkage model."),
    "format_version": _(
        "The model file has format version %(found)s; this Pilar reads format version %(expected)s."
    ),
    "feature_version": _(
        "The model was trained on feature version %(found)s; this Pilar computes feature "
        "version %(expected)s. Train a new model on this node."
    ),
    "splink_version": _(
        "The model was made with Splink %(found)s; this Pilar uses Splink %(expected)s, "
        "whose models differ. Train a new model on this node."
    ),
    "missing_comparisons": _("The model file lacks comparisons this Pilar needs: %(missing)s."),
    "comparison_levels": _(
        "The model file's comparison %(comparison)s has %(found)s levels; this Pilar's has "
        "%(expected)s. Train a new model on this node."
    ),
    "invalid_parameters": _("The model file is damaged: the values of %(where)s are not valid."),
    "invalid": _("The model file is damaged: %(detail)s"),
}


def _params(error: Any) -> dict[str, Any]:
    params = getattr(error, "params", None) or {}
    return {str(key): value for key, value in dict(params).items()}


def _format(template: Any, params: dict[str, Any]) -> str:
    text = str(template)
    try:
        return text % params if "%(" in text else text
    except (KeyError, TypeError, ValueError):
        return text


def model_error_message(error: Any) -> str:
    """The message for a ``ModelFileError`` (code and params), in the active language."""
    code = str(getattr(error, "code", "invalid"))
    params = _params(error)
    params.setdefault("detail", str(error))
    params.setdefault("found", "?")
    params.setdefault("expected", "?")
    missing = params.get("missing")
    if isinstance(missing, list | tuple | set):
        params["missing"] = ", ".join(str(item) for item in missing)
    params.setdefault("missing", "?")
    params.setdefault("comparison", "?")
    params.setdefault("where", "?")
    return _format(MODEL_ERRORS.get(code, MODEL_ERRORS["invalid"]), params)


def list_error_message(error: Any) -> str:
    """The message for an error ``lists.read_list`` reports (a whole-file or a row error): its
    English text from ``lists.MESSAGES``, translated through the catalogues."""
    from pilar.linkage import lists

    code = str(getattr(error, "code", ""))
    english = lists.MESSAGES.get(code, code)
    return _format(gettext(english), _params(error))

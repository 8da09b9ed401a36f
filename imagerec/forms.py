"""Form bodies refuse fields they do not declare, as JSON bodies do (``RequestModel`` forbids unknown keys).

FastAPI ignores a form field that no parameter names, so a misspelt option (``output_format=coco`` for
``format``) would quietly fall back to its default. ``refuse_unknown_form_fields`` compares the keys of the
parsed form with the fields the route declares, and answers an unknown one with a 422 located in the body, the
shape of FastAPI's own validation errors. The declared fields are the route's ``Form``/``File`` parameters and
those of its dependencies, by alias: the list the OpenAPI schema shows, so the two cannot drift apart. The form
is not read twice: FastAPI parses it for the body before dependencies run, and Starlette caches
``request.form()``.

On a route: ``@router.post(..., dependencies=[OnlyDeclaredFormFields])``.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


async def refuse_unknown_form_fields(request: Request) -> None:
    form = await request.form()
    known = declared_form_fields(request.scope["route"])
    unknown = [name for name in dict.fromkeys(form.keys()) if name not in known]
    if unknown:
        listed = ", ".join(known)
        raise RequestValidationError([
            {"type": "extra_forbidden", "loc": ("body", name),
             "msg": f"unknown form field '{name}'; known fields: {listed}",
             "input": value if isinstance(value := form[name], str) else None}
            for name in unknown
        ])


def declared_form_fields(route: APIRoute) -> list[str]:
    """The form fields ``route`` reads, in the order it declares them."""
    return [field.alias for field in get_flat_dependant(route.dependant).body_params]


OnlyDeclaredFormFields = Depends(refuse_unknown_form_fields)

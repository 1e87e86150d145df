from __future__ import annotations

from app.core.errors import problem_responses
from app.core.routing import make_router

router = make_router(prefix="/v1", tags=["charts"], responses=problem_responses(401, 403, 422))

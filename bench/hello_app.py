"""The ceiling: a bare FastAPI endpoint served by the same uvicorn settings as the service."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, bool]:
    return {"ok": True}

"""Storefront: an ordinary FastAPI app with one added line, ``ttbt5_otel.init(...)``.

It asks the inventory service (``INVENTORY_URL``) through httpx. Its server spans, the
client spans of its httpx calls and the trace context they carry come from the installed
instrumentations; its log records leave with the trace id of the request.

    uvicorn --app-dir examples/web --workers 4 --port 8000 storefront_fastapi:app
"""

import logging
import os

import httpx
from fastapi import FastAPI, HTTPException

import ttbt5_otel

ttbt5_otel.init(service_name=os.environ.get("OTEL_SERVICE_NAME", "storefront"))

log = logging.getLogger("storefront")
INVENTORY_URL = os.environ.get("INVENTORY_URL", "http://127.0.0.1:8001")
app = FastAPI()


@app.get("/products/{sku}")
async def product(sku: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=INVENTORY_URL, timeout=10) as client:
        reply = await client.get(f"/stock/{sku}")
    if reply.status_code >= 500:
        log.error("inventory failed for %s: %s", sku, reply.status_code)
        raise HTTPException(status_code=502, detail="inventory unavailable")
    if reply.status_code == 404:
        raise HTTPException(status_code=404, detail="no such product")
    stock = reply.json()
    log.info("served %s", sku)
    return {"sku": sku, "in_stock": stock["quantity"] > 0}

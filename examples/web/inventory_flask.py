"""Inventory: an ordinary Flask app with one added line, ``ttbt5_otel.init(...)``.

It reads stock from SQLite through SQLAlchemy, caches it in Redis (when ``REDIS_URL`` is
set) and asks a supplier service through requests (when ``SUPPLIER_URL`` is set). Nothing
in it mentions spans: the installed instrumentations produce them.

    gunicorn --chdir examples/web -w 4 -b 127.0.0.1:8001 inventory_flask:app
"""

import logging
import os

import requests
from flask import Flask, abort, jsonify
from sqlalchemy import create_engine, text

import ttbt5_otel

ttbt5_otel.init(service_name=os.environ.get("OTEL_SERVICE_NAME", "inventory"))

log = logging.getLogger("inventory")
engine = create_engine(os.environ.get("INVENTORY_DB", "sqlite:///:memory:"))
with engine.begin() as connection:
    connection.execute(text("CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, qty INT)"))
    connection.execute(text("INSERT OR IGNORE INTO stock VALUES ('apple', 12), ('pear', 0)"))

cache = None
if os.environ.get("REDIS_URL"):
    import redis

    cache = redis.Redis.from_url(os.environ["REDIS_URL"])

app = Flask(__name__)


@app.get("/stock/<sku>")
def stock(sku: str):  # noqa: ANN201 - a Flask view
    if sku == "broken":
        log.error("stock table unreadable for %s", sku)
        abort(500)
    cached = cache.get(f"stock:{sku}") if cache is not None else None
    if cached is not None:
        quantity = int(cached)
    else:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT qty FROM stock WHERE sku = :sku"), {"sku": sku}
            ).first()
        if row is None:
            abort(404)
        quantity = int(row[0])
        if cache is not None:
            cache.set(f"stock:{sku}", quantity, ex=5)
    if quantity == 0 and os.environ.get("SUPPLIER_URL"):
        reply = requests.get(f"{os.environ['SUPPLIER_URL']}/restock/{sku}", timeout=5)
        log.warning("restock requested for %s: %s", sku, reply.status_code)
    log.info("stock of %s is %d", sku, quantity)
    return jsonify(sku=sku, quantity=quantity)

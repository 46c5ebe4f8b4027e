"""The one vocabulary of column names used by every table this library reads or writes (RecTools-style)."""

from __future__ import annotations

from typing import Final


class Columns:
    """Column names shared by catalogues, interactions, recommendations and Snowflake tables."""

    ITEM_ID: Final = "item_id"
    SIMILAR_ITEM_ID: Final = "similar_item_id"
    CUSTOMER_ID: Final = "customer_id"
    EVENT_TYPE: Final = "event_type"
    TIMESTAMP: Final = "timestamp"
    LABEL: Final = "label"
    SCORE: Final = "score"
    RANK: Final = "rank"
    REASON: Final = "reason"
    IMAGE_PATH: Final = "image_path"
    IMAGE_URI: Final = "image_uri"
    SPLIT: Final = "split"
    WEIGHT: Final = "weight"
    MODEL: Final = "model"


class EventTypes:
    """Canonical event types of a fashion clickstream, weakest to strongest signal."""

    VIEW: Final = "view"
    ADD_TO_CART: Final = "add_to_cart"
    PURCHASE: Final = "purchase"
    ALL: Final = (VIEW, ADD_TO_CART, PURCHASE)

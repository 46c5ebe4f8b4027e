"""The one vocabulary of column names used by every table this library reads or writes (RecTools-style)."""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

#: One canonical event type (see :class:`EventTypes`).
EventType: TypeAlias = Literal["view", "add_to_cart", "purchase"]


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
    #: numeric price of an item (catalogue) or of one event (interactions; the Online Retail loader's ``unit_price``
    #: is read as the same thing)
    PRICE: Final = "price"
    UNIT_PRICE: Final = "unit_price"


class EventTypes:
    """Canonical event types of a fashion clickstream, weakest to strongest signal."""

    VIEW: Final[EventType] = "view"
    ADD_TO_CART: Final[EventType] = "add_to_cart"
    PURCHASE: Final[EventType] = "purchase"
    ALL: Final[tuple[EventType, ...]] = (VIEW, ADD_TO_CART, PURCHASE)

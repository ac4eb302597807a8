"""Pending Zoom authorizations, keyed by a hash of their `state` (the state itself is never stored)."""

from __future__ import annotations

from pynamodb.attributes import TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist
from pynamodb.models import Model

from link_zoom.adapters.dynamo import bind
from link_zoom.config import get_settings
from link_zoom.domain.connection import PendingAuthorization

CONDITION_FAILED = "ConditionalCheckFailedException"


class OAuthState(Model):
    class Meta:
        table_name = "OAuthStates"  # replaced by OAUTH_STATES_TABLE in _model()

    state_hash = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    code_verifier = UnicodeAttribute()
    redirect_uri = UnicodeAttribute()
    # Checked on use as well: DynamoDB's TTL deletes expired items only eventually.
    expires_at_epoch = TTLAttribute()


def _model() -> type[OAuthState]:
    return bind(OAuthState, get_settings().oauth_states_table)


def put(state_hash: str, pending: PendingAuthorization) -> None:
    model = _model()
    model(
        state_hash=state_hash,
        user_id=pending.user_id,
        code_verifier=pending.code_verifier,
        redirect_uri=pending.redirect_uri,
        expires_at_epoch=pending.expires_at,
    ).save(condition=model.state_hash.does_not_exist())


def take(state_hash: str) -> PendingAuthorization | None:
    """The pending authorization, removed in the same step: of two callbacks with one state, one gets it."""
    model = _model()
    try:
        item = model.get(state_hash, consistent_read=True)
        item.delete(condition=model.state_hash.exists())
    except DoesNotExist:
        return None
    except DeleteError as exc:
        if exc.cause_response_code == CONDITION_FAILED:
            return None
        raise
    return PendingAuthorization(item.user_id, item.code_verifier, item.redirect_uri, item.expires_at_epoch)

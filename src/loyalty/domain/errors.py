"""Domain errors. Each carries a stable machine ``code``; the API maps them to problems.

Error tree::

    LoyaltyError
    ├── NotFoundError             (404)
    │   ├── UnknownCard
    │   ├── UnknownNode
    │   ├── UnknownCampaign / UnknownPromotion / UnknownCluster / UnknownCustomer
    │   ├── UnknownOperator / UnknownApiClient / UnknownApiKey
    │   ├── UnknownProduct / UnknownPrize / UnknownRedemption
    │   ├── UnknownProjection / UnknownRfmRun                 read side
    │   └── UnknownOriginalMovement
    ├── ConflictError             (409)
    │   ├── IdempotencyConflict   same movement id, different body
    │   ├── DuplicateCode         a code already used in its namespace
    │   ├── ConcurrentUpdate      the stream moved on while we decided
    │   ├── AlreadyEnrolled       a second factor is already enrolled
    │   ├── CustomerErased        an erased customer cannot be changed
    │   └── ClusterFrozen         a static cluster's version is evaluated once
    ├── AuthenticationFailed      (401)
    ├── TooManyAttempts           (429)  sign-ins throttled or locked out
    ├── Forbidden                 (403)
    │   ├── TerminalMismatch      a terminal posting for another terminal
    │   ├── TwoFactorRequired     a restricted session: enrol a second factor first
    │   └── FamilyNotAllowed      a token used on an API family it was not given
    └── RuleViolation             (422)
        ├── InvalidMovement       malformed content (amounts, lines, dates…)
        ├── CardBlocked / CardReplaced
        ├── TerminalClosed
        ├── NoCampaign            no campaign covers the terminal at that time
        ├── InsufficientPoints
        ├── ReturnExceedsOriginal
        ├── InvalidPrize / PrizeNotAvailable / OutOfStock / AlreadyCancelled   prizes
        ├── CycleInNetwork / InvalidNetworkPlacement
        ├── PreviewDatePassed   a cluster's size asked for a day gone by
        ├── ClusterNotInForce   no version of the cluster is in force on the day
        ├── WeakPassword / InvalidUsername / InvalidScope   operators
        ├── InvalidQuery / InvalidRfmParameters / UnknownPosition   analytics
        └── InvalidProgram        a program definition that cannot be applied
    NotCaughtUp                   (503)  a read model did not reach a position in time
    UnknownMasterKey              (500)  personal data wrapped by a master key not configured
    ReadModelRebuilding           (503)  a read model's serving generation has another shape
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base of every error a user can cause. ``code`` is stable; ``message`` is for people."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class NotFoundError(LoyaltyError):
    status = 404
    code = "not_found"


class UnknownCard(NotFoundError):
    code = "unknown_card"


class UnknownNode(NotFoundError):
    code = "unknown_node"


class UnknownCampaign(NotFoundError):
    code = "unknown_campaign"


class UnknownPromotion(NotFoundError):
    code = "unknown_promotion"


class UnknownCluster(NotFoundError):
    code = "unknown_cluster"


class UnknownCustomer(NotFoundError):
    code = "unknown_customer"


class UnknownOriginalMovement(NotFoundError):
    code = "unknown_original_movement"


class ConflictError(LoyaltyError):
    status = 409
    code = "conflict"


class IdempotencyConflict(ConflictError):
    code = "idempotency_conflict"


class DuplicateCode(ConflictError):
    code = "duplicate_code"


class ConcurrentUpdate(ConflictError):
    code = "concurrent_update"


class AuthenticationFailed(LoyaltyError):
    status = 401
    code = "unauthenticated"


class TooManyAttempts(LoyaltyError):
    status = 429
    code = "too_many_attempts"


class Forbidden(LoyaltyError):
    status = 403
    code = "forbidden"


class TerminalMismatch(Forbidden):
    code = "terminal_mismatch"


class TwoFactorRequired(Forbidden):
    code = "two_factor_required"


class FamilyNotAllowed(Forbidden):
    code = "api_family_not_allowed"


class AlreadyEnrolled(ConflictError):
    code = "already_enrolled"


class RuleViolation(LoyaltyError):
    status = 422
    code = "rule_violation"


class InvalidMovement(RuleViolation):
    code = "invalid_movement"


class CardBlocked(RuleViolation):
    code = "card_blocked"


class CardReplaced(RuleViolation):
    code = "card_replaced"


class TerminalClosed(RuleViolation):
    code = "terminal_closed"


class NoCampaign(RuleViolation):
    code = "no_campaign"


class InsufficientPoints(RuleViolation):
    code = "insufficient_points"


class ReturnExceedsOriginal(RuleViolation):
    code = "return_exceeds_original"


class CycleInNetwork(RuleViolation):
    code = "network_cycle"


class InvalidNetworkPlacement(RuleViolation):
    code = "invalid_network_placement"


class InvalidProgram(RuleViolation):
    code = "invalid_program"


class PreviewDatePassed(RuleViolation):
    code = "preview_date_passed"


class UnknownOperator(NotFoundError):
    code = "unknown_operator"


class UnknownProduct(NotFoundError):
    code = "unknown_product"


class UnknownApiClient(NotFoundError):
    code = "unknown_api_client"


class UnknownApiKey(NotFoundError):
    code = "unknown_api_key"


class WeakPassword(RuleViolation):
    code = "weak_password"


class InvalidUsername(RuleViolation):
    code = "invalid_username"


class InvalidScope(RuleViolation):
    code = "invalid_scope"


class UnknownPrize(NotFoundError):
    code = "unknown_prize"


class UnknownRedemption(NotFoundError):
    code = "unknown_redemption"


class InvalidPrize(RuleViolation):
    code = "invalid_prize"


class PrizeNotAvailable(RuleViolation):
    code = "prize_not_available"


class OutOfStock(RuleViolation):
    code = "out_of_stock"


class AlreadyCancelled(RuleViolation):
    code = "already_cancelled"


class CustomerErased(ConflictError):
    """An erased customer's data cannot be written again, nor the customer changed."""

    code = "customer_erased"


class UnknownProjection(NotFoundError):
    code = "unknown_projection"


class UnknownRfmRun(NotFoundError):
    code = "unknown_rfm_run"


class InvalidQuery(RuleViolation):
    """An analytics query that cannot be answered as asked (interval, dimensions…)."""

    code = "invalid_query"


class InvalidRfmParameters(RuleViolation):
    """RFM parameters that cannot score every customer into exactly one segment."""

    code = "invalid_rfm_parameters"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field=field)

    @property
    def field(self) -> str:
        """The offending part of the parameters (``scale``, ``rules[3].recency``…)."""
        return str(self.context["field"])


class NotCaughtUp(LoyaltyError):
    """A read asked to wait for a position its read model did not reach in time."""

    status = 503
    code = "not_caught_up"


class ReadModelRebuilding(LoyaltyError):
    """A read model's serving generation stores another shape than this release reads (it
    was built by an older release, and ``loyalty projections run`` is rebuilding it, or by a
    newer one): it answers no reads rather than wrong figures."""

    status = 503
    code = "read_model_rebuilding"


class UnknownPosition(RuleViolation):
    """A read asked to wait for a log position beyond the newest event."""

    code = "unknown_position"


class ClusterFrozen(ConflictError):
    """A static cluster's members are evaluated once per version, then frozen."""

    code = "cluster_frozen"


class ClusterNotInForce(RuleViolation):
    """A cluster whose first version takes effect later has no members to evaluate yet."""

    code = "cluster_not_in_force"


class InvalidSetting(LoyaltyError):
    """A ``LOYALTY_*`` environment variable that does not hold a value of its setting."""

    code = "invalid_setting"


class UnknownMasterKey(LoyaltyError):
    """A customer's data key is wrapped by a master key that is neither the configured one
    nor the previous one (a lost or replaced ``var/master.key``): the personal data cannot
    be opened with this configuration, and nothing is changed."""

    status = 500
    code = "unknown_master_key"

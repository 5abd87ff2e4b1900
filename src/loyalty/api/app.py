"""``create_app(settings)``: the litestar application."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from loyalty import __version__
from loyalty.api.analytics.clusters import AnalyticsClustersController
from loyalty.api.analytics.customers import AnalyticsCustomersController
from loyalty.api.analytics.dashboard import AnalyticsDashboardController
from loyalty.api.analytics.revenue import AnalyticsRevenueController
from loyalty.api.analytics.rfm import AnalyticsRfmController
from loyalty.api.audit import AuditController
from loyalty.api.auth import AuthController
from loyalty.api.campaigns import CampaignsController
from loyalty.api.clients import ClientsController
from loyalty.api.clusters import ClustersController
from loyalty.api.customers import CustomersController
from loyalty.api.errors import HANDLERS
from loyalty.api.network import NetworkController
from loyalty.api.operators import OperatorsController
from loyalty.api.privacy import PolicyController, PrivacyController
from loyalty.api.prizes import PrizesController, RedemptionsController
from loyalty.api.products import ProductsController
from loyalty.api.promotions import PromotionsController
from loyalty.api.terminal import TerminalController
from loyalty.api.translations import TranslationsController
from loyalty.bootstrap import Services, build_services
from loyalty.settings import Settings


@get("/health", operation_id="health", tags=["Operations"], summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings, services: Services | None = None) -> Litestar:
    """The API; builds its services on start-up unless given ready ones (tests)."""
    owned = services is None

    def start(app: Litestar) -> None:
        app.state.services = services or build_services(settings)
        app.state.services.writer.start()
        app.state.services.start_jobs()

    def stop(app: Litestar) -> None:
        if owned:
            app.state.services.close()

    return Litestar(
        route_handlers=[
            AuthController,
            OperatorsController,
            ClientsController,
            NetworkController,
            PromotionsController,
            CampaignsController,
            ClustersController,
            TranslationsController,
            CustomersController,
            ProductsController,
            PrizesController,
            RedemptionsController,
            PrivacyController,
            PolicyController,
            AuditController,
            AnalyticsRevenueController,
            AnalyticsRfmController,
            AnalyticsClustersController,
            AnalyticsCustomersController,
            AnalyticsDashboardController,
            TerminalController,
            health,
        ],
        exception_handlers=HANDLERS,
        on_startup=[start],
        on_shutdown=[stop],
        state=State(),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Loyalty ledger", version=__version__, path="/api/v1/schema"
        ),
        debug=False,
    )

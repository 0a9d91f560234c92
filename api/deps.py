"""What the routes share, built once when the app starts: clients, stores, the
payment engine and the Well-being Action Fund."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.engine import Engine
from temporalio.client import Client

from api.idempotency import IdempotencyStore
from api.personal_data import PersonalDataStore
from api.tenancy import Tenancy
from fund.service import FundService
from pathway.config import PathwayConfig
from payments.engine import PaymentEngine


@dataclass
class Deps:
    client: Client
    engine: Engine
    people: PersonalDataStore
    tenancy: Tenancy
    config: PathwayConfig
    payments: PaymentEngine
    idempotency: IdempotencyStore = field(init=False)
    fund: FundService = field(init=False)

    def __post_init__(self) -> None:
        self.idempotency = IdempotencyStore(self.engine)
        self.fund = FundService(self.engine)


def deps(request: Request) -> Deps:
    return request.app.state.deps

"""RegistryService: the registry's business rules (homes, members, devices, authorisation).

It knows nothing of FastAPI or SQL: the routes call it with the verified
:class:`~hearth.common.tokens.Caller`, the queries live in
:class:`~hearth.registry.repository.RegistryRepository` (one per transaction), the rights
in :mod:`hearth.registry.access`. Every change commits first, then publishes
its event (:class:`~hearth.registry.events.EventPublisher`).

Every change of a device's broker login (create, rotate, disable, delete, a gateway's
role) is sent to the broker *inside* the device's transaction, before the commit: when the
broker does not take it the transaction rolls back and the caller gets 503, so the table
never claims a login the broker refused. A commit that fails after the broker took the
change leaves a difference that :meth:`RegistryService.reconcile` removes (it runs at
start and on demand).

Anything of a home the caller may not see answers 404 (``home_not_found``), exactly as
for a home that does not exist; a visible home where the caller's role falls short
answers 403 (``role_forbidden``); a token lacking a scope 403 (``insufficient_scope``).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence

from hearth.common.authorization import Action, AuthorizeAnswer, AuthorizeRequest, DenyReason, Role
from hearth.common.capabilities import Metric, Property
from hearth.common.capability_feed import MAX_METRICS
from hearth.common.clock import utc_now
from hearth.common.db import DuplicateRow, Transactions
from hearth.common.errors import Forbidden, InsufficientScope
from hearth.common.logins import device_username
from hearth.common.messages import CommandOutcome, RegistryAction, RegistryKind
from hearth.common.sealing import Unsealable
from hearth.common.tokens import Caller
from hearth.common.topics import (
    DeviceTopic,
    Kind,
    TopicError,
    TopicFilter,
    can_match_device_topic,
    filter_device,
    filter_home,
    filter_name,
    is_slug,
    parse_filter,
    parse_topic,
)
from hearth.registry.access import SCOPE_FOR, check_access, role_allows, token_denies, visible
from hearth.registry.catalogue import CATALOGUE
from hearth.registry.device_config import BrokerAddress, DeviceConfig
from hearth.registry.device_logins import DeviceLogins, ReconcileReport, WantedLogin
from hearth.registry.errors import (
    AlreadyMember,
    DeviceKeyMismatch,
    GatewayInUse,
    InvalidGateway,
    LastOwner,
    MemberNotFound,
    NoCredentials,
    SlugTaken,
)
from hearth.registry.events import EventPublisher
from hearth.registry.guards import guard_device, guard_home, raise_denied, user_id
from hearth.registry.models import (
    CommandRow,
    Device,
    DeviceCreate,
    DeviceCredentials,
    DeviceDetail,
    DevicePublic,
    DeviceUpdate,
    DeviceWithCredentials,
    Home,
    HomeCreate,
    HomePublic,
    HomeUpdate,
    MemberAdd,
    MemberPublic,
    Membership,
    MemberUpdate,
    PropertyState,
)
from hearth.registry.passwords import DevicePasswords
from hearth.registry.repository import RegistryRepository
from hearth.registry.shadow import LiveShadow, Reported
from hearth.registry.snapshots import SnapshotPublisher
from hearth.registry.users import AuthUsers

__all__ = ["RegistryService"]

log = logging.getLogger(__name__)

_MAX_GATEWAY_HOPS = 64


class RegistryService:
    """The registry's use cases; one transaction each."""

    def __init__(
        self,
        transactions: Transactions[RegistryRepository],
        users: AuthUsers,
        events: EventPublisher,
        logins: DeviceLogins,
        passwords: DevicePasswords,
        broker: BrokerAddress,
        shadow: LiveShadow,
        snapshots: SnapshotPublisher,
        *,
        authorize_ttl: int = 5,
    ) -> None:
        self._transactions = transactions
        self._users = users
        self._events = events
        self._logins = logins
        self._passwords = passwords
        self._broker = broker
        self._shadow = shadow
        self._snapshots = snapshots
        self.authorize_ttl = authorize_ttl

    # ------------------------------------------------------------------ homes

    async def create_home(self, caller: Caller, body: HomeCreate) -> HomePublic:
        """Create a home; the caller becomes its owner (409 when the slug is taken)."""
        reason = token_denies(caller, body.slug, Action.MANAGE)
        if reason is not None:
            raise_denied(reason, body.slug, Action.MANAGE)
        me = await self._users.me(caller.authorization)
        home = Home(slug=body.slug, name=body.name, timezone=body.timezone)
        owner = Membership(
            home=body.slug, user_id=user_id(caller), role=Role.OWNER.value, username=me.username
        )
        async with self._transactions() as repo:
            if await repo.get_home(body.slug) is not None:
                raise SlugTaken(f"home {body.slug!r} already exists")
            try:
                repo.add(home)
                await repo.flush()  # the home row first: the membership refers to it
                repo.add(owner)
                await repo.commit()
            except DuplicateRow:
                raise SlugTaken(f"home {body.slug!r} already exists") from None
        await self._events.publish(RegistryKind.HOME, home.slug, RegistryAction.CREATED)
        return HomePublic.of(home, Role.OWNER)

    async def list_homes(self, caller: Caller) -> list[HomePublic]:
        """The caller's homes (every home for an admin), narrowed to an API key's homes."""
        if not caller.has_scope(SCOPE_FOR[Action.READ]):
            raise InsufficientScope(SCOPE_FOR[Action.READ])
        async with self._transactions() as repo:
            rows = await repo.list_homes(user_id(caller), every=caller.is_admin)
        return [
            HomePublic.of(home, None if role is None else Role(role))
            for home, role in rows
            if caller.may_use_home(home.slug)
        ]

    async def get_home(self, caller: Caller, slug: str) -> HomePublic:
        """One home the caller may read."""
        async with self._transactions() as repo:
            home, role = await guard_home(repo, caller, slug, Action.READ)
        return HomePublic.of(home, role)

    async def update_home(self, caller: Caller, slug: str, body: HomeUpdate) -> HomePublic:
        """Rename a home or change its time zone (owners and admins)."""
        async with self._transactions() as repo:
            home, role = await guard_home(repo, caller, slug, Action.MANAGE)
            if body.name is not None:
                home.name = body.name
            if body.timezone is not None:
                home.timezone = body.timezone
            home.updated_at = utc_now()
            repo.add(home)
            await repo.commit()
        await self._events.publish(RegistryKind.HOME, slug, RegistryAction.UPDATED)
        return HomePublic.of(home, role)

    # ------------------------------------------------------------------ members

    async def list_members(self, caller: Caller, slug: str) -> list[MemberPublic]:
        """The members of a home the caller may read."""
        async with self._transactions() as repo:
            await guard_home(repo, caller, slug, Action.READ)
            return [MemberPublic.of(m) for m in await repo.list_members(slug)]

    async def get_member(self, caller: Caller, slug: str, user_id: uuid.UUID) -> MemberPublic:
        """One member of a home the caller may read."""
        async with self._transactions() as repo:
            await guard_home(repo, caller, slug, Action.READ)
            membership = await repo.get_membership(slug, user_id)
        if membership is None:
            raise MemberNotFound(f"{user_id} is not a member of {slug!r}")
        return MemberPublic.of(membership)

    async def add_member(self, caller: Caller, slug: str, body: MemberAdd) -> MemberPublic:
        """Add a user, found by username at auth, with a role (owners and admins)."""
        async with self._transactions() as repo:
            await guard_home(repo, caller, slug, Action.MANAGE)
        user = await self._users.lookup(body.username, caller.authorization)
        membership = Membership(
            home=slug, user_id=user.id, role=body.role.value, username=user.username
        )
        async with self._transactions() as repo:
            await guard_home(repo, caller, slug, Action.MANAGE, lock=True)
            if await repo.get_membership(slug, user.id) is not None:
                raise AlreadyMember(f"{body.username} is already a member of {slug!r}")
            repo.add(membership)
            await repo.commit()
        await self._events.publish(
            RegistryKind.MEMBERSHIP, slug, RegistryAction.CREATED, user=user.id
        )
        return MemberPublic.of(membership)

    async def update_member(
        self, caller: Caller, slug: str, user_id: uuid.UUID, body: MemberUpdate
    ) -> MemberPublic:
        """Change a member's role (owners and admins); a home keeps at least one owner."""
        async with self._transactions() as repo:
            await guard_home(repo, caller, slug, Action.MANAGE, lock=True)
            membership = await repo.get_membership(slug, user_id)
            if membership is None:
                raise MemberNotFound(f"{user_id} is not a member of {slug!r}")
            if (
                membership.role == Role.OWNER.value
                and body.role is not Role.OWNER
                and await repo.count_owners(slug) <= 1
            ):
                raise LastOwner(f"{slug!r} would have no owner left")
            membership.role = body.role.value
            membership.updated_at = utc_now()
            repo.add(membership)
            await repo.commit()
        await self._events.publish(
            RegistryKind.MEMBERSHIP, slug, RegistryAction.UPDATED, user=user_id
        )
        return MemberPublic.of(membership)

    async def remove_member(self, caller: Caller, slug: str, user_id: uuid.UUID) -> None:
        """Remove a member (owners and admins); a home keeps at least one owner."""
        async with self._transactions() as repo:
            await guard_home(repo, caller, slug, Action.MANAGE, lock=True)
            membership = await repo.get_membership(slug, user_id)
            if membership is None:
                raise MemberNotFound(f"{user_id} is not a member of {slug!r}")
            if membership.role == Role.OWNER.value and await repo.count_owners(slug) <= 1:
                raise LastOwner(f"{slug!r} would have no owner left")
            await repo.delete(membership)
            await repo.commit()
        await self._events.publish(
            RegistryKind.MEMBERSHIP, slug, RegistryAction.DELETED, user=user_id
        )

    # ------------------------------------------------------------------ devices

    async def list_devices(
        self,
        caller: Caller,
        slug: str,
        *,
        online: bool | None = None,
        area: str | None = None,
        type: str | None = None,
    ) -> list[DevicePublic]:
        """The live devices of a home the caller may read, narrowed by the filters given."""
        async with self._transactions() as repo:
            await guard_home(repo, caller, slug, Action.READ)
            devices = await repo.list_devices(slug, online=online, area=area, type=type)
        return [self._public(d) for d in devices]

    async def get_device(self, caller: Caller, slug: str, device: str) -> DeviceDetail:
        """One live device of a home the caller may read, with its shadow."""
        async with self._transactions() as repo:
            found = await guard_device(repo, caller, slug, device, Action.READ)
            desired = await repo.desired_states(slug, device)
        reported = self._shadow.reported(slug, device)
        state: dict[str, PropertyState] = {}
        for prop in sorted({*reported, *(c.property for c in desired)}):
            state[prop] = _property_state(
                reported.get(prop), next((c for c in desired if c.property == prop), None)
            )
        return DeviceDetail(**self._public(found).model_dump(), state=state)

    def _public(self, device: Device) -> DevicePublic:
        return DevicePublic.of(device, self._shadow.last_seen(device.home, device.slug))

    async def create_device(
        self, caller: Caller, slug: str, body: DeviceCreate
    ) -> DeviceWithCredentials:
        """Add a device (owners and admins); the type fills what the body leaves out.

        409 when the slug is used, or was used by a deleted device, in this home.
        """
        entry = CATALOGUE[body.type]
        metrics = entry.metrics if body.metrics is None else body.metrics
        properties = entry.properties if body.properties is None else body.properties
        device = Device(
            home=slug,
            slug=body.slug,
            name=body.name,
            type=body.type,
            area=body.area,
            gateway=body.gateway,
            interval=entry.interval if body.interval is None else body.interval,
            metrics=[m.model_dump(exclude_none=True) for m in metrics],
            properties=[p.model_dump(exclude_none=True) for p in properties],
            credentials_generation=1,
            refuse_undeclared=bool(body.refuse_undeclared),
        )
        password = self._passwords.generate()
        device.password_sealed = self._passwords.seal(slug, body.slug, password)
        async with self._transactions() as repo:
            await guard_home(repo, caller, slug, Action.MANAGE)
            await repo.lock_logins()
            if await repo.slug_used(slug, body.slug):
                raise SlugTaken(f"device slug {body.slug!r} is (or was) used in {slug!r}")
            if body.gateway is not None:
                await self._check_gateway(repo, slug, body.slug, body.gateway)
            repo.add(device)
            try:
                await repo.flush()
            except DuplicateRow:
                raise SlugTaken(f"device slug {body.slug!r} is (or was) used in {slug!r}") from None
            await self._logins.create(WantedLogin(slug, body.slug, password, 1))
            if body.gateway is not None:
                await self._sync_gateway(repo, slug, body.gateway)
            await self._commit_or_undo(repo, slug, body.slug)
        await self._snapshots.publish(device.snapshot())
        await self._events.publish(
            RegistryKind.DEVICE, slug, RegistryAction.CREATED, device=device.slug
        )
        return _with_credentials(device, password)

    async def _commit_or_undo(self, repo: RegistryRepository, home: str, device: str) -> None:
        """Commit a new device; if that fails, take its new login away again (best effort)."""
        try:
            await repo.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._logins.delete(home, device)
            raise

    async def update_device(
        self, caller: Caller, slug: str, device_slug: str, body: DeviceUpdate
    ) -> DevicePublic:
        """Change a device's name, area, gateway, interval or capabilities (owners, admins)."""
        given = body.model_fields_set
        async with self._transactions() as repo:
            device = await guard_device(
                repo, caller, slug, device_slug, Action.MANAGE, changes_login=True
            )
            old_gateway = device.gateway
            old_disabled = device.disabled
            if body.name is not None:
                device.name = body.name
            if body.area is not None:
                device.area = body.area
            if body.interval is not None:
                device.interval = body.interval
            if "gateway" in given:
                if body.gateway is not None:
                    await self._check_gateway(repo, slug, device_slug, body.gateway)
                device.gateway = body.gateway
            if body.metrics is not None:
                device.metrics = [m.model_dump(exclude_none=True) for m in body.metrics]
            if body.properties is not None:
                device.properties = [p.model_dump(exclude_none=True) for p in body.properties]
            if body.disabled is not None:
                device.disabled = body.disabled
            if body.refuse_undeclared is not None:
                device.refuse_undeclared = body.refuse_undeclared
            device.updated_at = utc_now()
            repo.add(device)
            await repo.flush()
            if device.disabled != old_disabled:
                await self._logins.set_disabled(slug, device_slug, device.disabled)
            if device.gateway != old_gateway:
                for gateway in (old_gateway, device.gateway):
                    if gateway is not None:
                        await self._sync_gateway(repo, slug, gateway)
            await repo.commit()
        await self._snapshots.publish(device.snapshot())
        await self._events.publish(
            RegistryKind.DEVICE, slug, RegistryAction.UPDATED, device=device_slug
        )
        return DevicePublic.of(device)

    async def delete_device(self, caller: Caller, slug: str, device_slug: str) -> None:
        """Delete a device (owners, admins): it becomes a tombstone keeping its slug taken."""
        async with self._transactions() as repo:
            device = await guard_device(
                repo, caller, slug, device_slug, Action.MANAGE, changes_login=True
            )
            relayed = await repo.gateway_users(slug, device_slug)
            if relayed:
                raise GatewayInUse(f"{device_slug!r} is the gateway of {', '.join(relayed)}")
            device.deleted_at = device.updated_at = utc_now()
            device.password_sealed = None
            repo.add(device)
            await repo.flush()
            await self._logins.delete(slug, device_slug)
            if device.gateway is not None:
                await self._sync_gateway(repo, slug, device.gateway)
            await repo.commit()
        self._shadow.forget(slug, device_slug)
        await self._snapshots.remove(slug, device_slug)
        await self._events.publish(
            RegistryKind.DEVICE, slug, RegistryAction.DELETED, device=device_slug
        )

    async def add_discovered_metric(self, home: str, device_slug: str, metric: str) -> bool:
        """Add a metric ingest stored but the device does not declare (name only).

        Nothing changes when the device is unknown or deleted, refuses undeclared metrics,
        has the metric already, or has :data:`MAX_METRICS` metrics; whether it was added.
        Idempotent (the device row is locked), so every replica may hear the report.
        """
        async with self._transactions() as repo:
            device = await repo.lock_device(home, device_slug)
            if device is None or device.refuse_undeclared or device.find_metric(metric):
                return False
            if len(device.metrics) >= MAX_METRICS:
                log.warning(
                    "discovered metric not added: the device has the most metrics",
                    extra={"home": home, "device": device_slug, "metric": metric},
                )
                return False
            device.metrics = [*device.metrics, Metric(name=metric).model_dump(exclude_none=True)]
            device.updated_at = utc_now()
            repo.add(device)
            await repo.commit()
        log.info(
            "discovered metric added", extra={"home": home, "device": device_slug, "metric": metric}
        )
        await self._snapshots.publish(device.snapshot())
        await self._events.publish(
            RegistryKind.DEVICE, home, RegistryAction.UPDATED, device=device_slug
        )
        return True

    async def republish_snapshots(self) -> int:
        """Publish the snapshot of every live device again (at start); how many."""
        async with self._transactions() as repo:
            devices = await repo.every_live_device()
        for device in devices:
            await self._snapshots.publish(device.snapshot())
        return len(devices)

    async def rotate_credentials(
        self, caller: Caller, slug: str, device_slug: str
    ) -> DeviceWithCredentials:
        """A new broker password for a device (owners, admins), shown once; the old one stops
        working at once (the broker disconnects the device)."""
        password = self._passwords.generate()
        async with self._transactions() as repo:
            device = await guard_device(
                repo, caller, slug, device_slug, Action.MANAGE, changes_login=True
            )
            had_login = device.password_sealed is not None
            device.credentials_generation += 1
            device.password_sealed = self._passwords.seal(slug, device_slug, password)
            device.updated_at = utc_now()
            repo.add(device)
            await repo.flush()
            if had_login:
                await self._logins.set_password(
                    slug, device_slug, password, device.credentials_generation
                )
            else:  # a device from before device logins existed
                relays = await repo.gateway_users(slug, device_slug)
                await self._logins.create(_wanted(device, password, relays))
            await repo.commit()
        await self._events.publish(
            RegistryKind.DEVICE, slug, RegistryAction.UPDATED, device=device_slug
        )
        return _with_credentials(device, password)

    async def device_config(self, caller: Caller, slug: str, device_slug: str) -> DeviceConfig:
        """Everything a device's firmware needs, its password included (owners, admins)."""
        async with self._transactions() as repo:
            device = await guard_device(repo, caller, slug, device_slug, Action.MANAGE)
        if device.password_sealed is None:
            raise NoCredentials(
                f"{device_slug!r} has no broker login yet: rotate its credentials first"
            )
        password = self._open(device)
        return DeviceConfig.of(device, password, self._broker)

    async def reconcile_for(self, caller: Caller) -> ReconcileReport:
        """:meth:`reconcile`, asked for over HTTP: platform admins only."""
        if not (caller.is_admin and caller.is_session):  # not an API key, not a service
            raise Forbidden("only a platform admin may reconcile the broker")
        return await self.reconcile()

    async def reconcile(self) -> ReconcileReport:
        """Make the broker's device logins exactly the live devices of this table.

        Creates missing logins with their stored passwords, deletes device logins the
        table does not know, repairs roles, passwords and the disabled flag; never touches
        a login outside ``dev.``. Raises :class:`~hearth.registry.errors.DeviceKeyMismatch`
        (and changes nothing) when the stored passwords do not open with this device key.
        """
        async with self._transactions() as repo:
            await repo.lock_logins(exclusive=True)  # no login change is half done meanwhile
            devices = await repo.list_devices_with_logins()
            relays: dict[tuple[str, str], list[str]] = {}
            for device in devices:
                if device.gateway is not None:
                    relays.setdefault((device.home, device.gateway), []).append(device.slug)
            wanted = [
                _wanted(device, self._open(device), relays.get((device.home, device.slug), []))
                for device in devices
            ]
            return await self._logins.reconcile(wanted)

    def _open(self, device: Device) -> str:
        assert device.password_sealed is not None
        try:
            return self._passwords.open(device.home, device.slug, device.password_sealed)
        except Unsealable:
            raise DeviceKeyMismatch(
                f"the password of {device_username(device.home, device.slug)} does not open: "
                "is HEARTH_REGISTRY_DEVICE_KEY the key it was sealed with?"
            ) from None

    async def _sync_gateway(self, repo: RegistryRepository, home: str, gateway: str) -> None:
        """Give a gateway's role the ACLs of exactly the devices relaying through it now."""
        await self._logins.sync_role(home, gateway, await repo.gateway_users(home, gateway))

    async def _check_gateway(
        self, repo: RegistryRepository, home: str, device: str, gateway: str
    ) -> None:
        """Refuse a gateway that is not a live device of ``home`` or would relay in a loop."""
        current: str | None = gateway
        for _ in range(_MAX_GATEWAY_HOPS):
            if current is None:
                return
            if current == device:
                raise InvalidGateway(f"{device!r} cannot relay through itself")
            found = await repo.get_device(home, current)
            if found is None:
                raise InvalidGateway(f"gateway {current!r} is not a device of {home!r}")
            current = found.gateway
        raise InvalidGateway("the gateway chain is too long")

    # ------------------------------------------------------------------ authorisation

    async def authorize(self, caller: Caller, request: AuthorizeRequest) -> AuthorizeAnswer:
        """May ``caller`` do ``request.action`` on its topic, filter or home? (Never raises.)

        The target is parsed once here; the checks below take the typed value.
        """
        if request.home is not None:
            return await self._authorize_home(caller, request.home, request.action)
        try:
            if request.topic is not None:
                return await self._authorize_topic(
                    caller, parse_topic(request.topic), request.action
                )
            assert request.filter is not None  # the request model makes sure one is given
            parsed = parse_filter(request.filter)
        except TopicError:
            return self._answer("invalid", None)
        return await self._authorize_filter(caller, parsed, request.action)

    def _answer(
        self, reason: DenyReason | None, role: Role | None, capability: Property | None = None
    ) -> AuthorizeAnswer:
        return AuthorizeAnswer(
            allowed=reason is None,
            role=role,
            reason=reason,
            capability=capability if reason is None else None,
            ttl=self.authorize_ttl,
        )

    async def _role(self, caller: Caller, home: str) -> Role | None:
        async with self._transactions() as repo:
            return await repo.find_role(home, user_id(caller))

    async def _authorize_home(self, caller: Caller, home: str, action: Action) -> AuthorizeAnswer:
        if not is_slug(home):
            return self._answer("invalid", None)
        async with self._transactions() as repo:
            exists = await repo.get_home(home) is not None
            role = await repo.find_role(home, user_id(caller))
        if not exists:
            return self._answer("not_found", None)
        return self._answer(check_access(caller, home, role, action), role)

    async def _authorize_topic(
        self, caller: Caller, topic: DeviceTopic, action: Action
    ) -> AuthorizeAnswer:
        async with self._transactions() as repo:
            role = await repo.find_role(topic.home, user_id(caller))
            exists = await repo.get_home(topic.home) is not None
            device = await repo.get_device(topic.home, topic.device) if exists else None
        if not exists or not visible(caller, role):
            return self._answer("not_found", role)
        denied = token_denies(caller, topic.home, action)
        if denied is not None:
            return self._answer(denied, role)
        capability = None
        if device is None:
            return self._answer("not_found", role)
        if topic.kind is Kind.TELEMETRY:
            known = device.find_metric(topic.name or "") is not None
        elif topic.kind in (Kind.STATE, Kind.COMMAND):
            capability = device.find_property(topic.name or "")
            known = capability is not None
        else:
            known = True  # ack and status exist for every live device
        if not known:
            return self._answer("not_found", role)
        if action is Action.WRITE and topic.kind is not Kind.COMMAND:
            return self._answer("not_command", role)
        if not role_allows(caller, role, action):
            return self._answer("role", role)
        return self._answer(None, role, capability if action is Action.WRITE else None)

    async def _authorize_filter(
        self, caller: Caller, parsed: TopicFilter, action: Action
    ) -> AuthorizeAnswer:
        if parsed.share_group is not None:
            return self._answer("invalid", None)
        if action is not Action.READ:
            return self._answer("filter_read_only", None)
        if not parsed.has_wildcards:  # names exactly one topic: the same answer as for it
            try:
                topic = parse_topic(parsed.filter)
            except TopicError:
                return self._answer("invalid", None)
            return await self._authorize_topic(caller, topic, action)
        home = filter_home(parsed)
        if home is None:
            return self._answer("filter_outside_home", None)
        if not can_match_device_topic(parsed):
            return self._answer("invalid", None)
        device_slug = filter_device(parsed)
        async with self._transactions() as repo:
            role = await repo.find_role(home, user_id(caller))
            exists = await repo.get_home(home) is not None
            device = (
                await repo.get_device(home, device_slug)
                if exists and device_slug is not None
                else None
            )
        if not exists or not visible(caller, role):
            return self._answer("not_found", role)
        denied = token_denies(caller, home, action)
        if denied is not None:
            return self._answer(denied, role)
        if device_slug is not None and (device is None or not _names_known(device, parsed)):
            return self._answer("not_found", role)
        if not role_allows(caller, role, action):
            return self._answer("role", role)
        return self._answer(None, role)


def _wanted(device: Device, password: str, relays: Sequence[str]) -> WantedLogin:
    return WantedLogin(
        device.home,
        device.slug,
        password,
        device.credentials_generation,
        disabled=device.disabled,
        relays=tuple(relays),
    )


def _with_credentials(device: Device, password: str) -> DeviceWithCredentials:
    username = device_username(device.home, device.slug)
    return DeviceWithCredentials(
        **DevicePublic.of(device).model_dump(),
        credentials=DeviceCredentials(username=username, password=password, client_id=username),
    )


def _same(reported: object, desired: object) -> bool:
    """Whether two JSON values are equal as JSON (``true`` is not ``1``; ``1`` is ``1.0``)."""
    if isinstance(reported, bool) or isinstance(desired, bool):
        return isinstance(reported, bool) and isinstance(desired, bool) and reported == desired
    return reported == desired


def _property_state(reported: Reported | None, last: CommandRow | None) -> PropertyState:
    state = PropertyState()
    if reported is not None:
        state.reported, state.reported_at = reported.value, reported.at
    if last is not None:
        state.desired, state.desired_at = last.value, last.issued_at
        state.desired_outcome = None if last.outcome is None else CommandOutcome(last.outcome)
        state.mismatch = reported is None or not _same(reported.value, last.value)
    return state


def _names_known(device: Device, parsed: TopicFilter) -> bool:
    """Whether a literal metric or property name in a filter is registered on ``device``."""
    named = filter_name(parsed)
    if named is None:
        return True
    kinds, name = named
    if Kind.TELEMETRY in kinds and device.find_metric(name) is not None:
        return True
    return bool(kinds & {Kind.STATE, Kind.COMMAND}) and (device.find_property(name) is not None)

"""Who signs in where, and how often they may guess: staff roles as plain data and the login throttle as a rule.

A role is everything that differs between the clerks' login (Sitzungsdienst) and the technicians' (Technik): its
password and sessions in `settings`, its entry in the signed cookie, its audit name, its pages. One set of
functions (appliance.usecases.login) and one set of views (appliance.web.auth) serve every role; a further role
is one more Role here, a blueprint that calls auth.register(bp, role), and auth.required(role) on its pages. The
chair is not such a role: the chair has no password and does not log in, their own member device is the console
(rules.viewer.is_chair). Roles never open each other's pages: separate hashes, sessions and cookie keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    name: str  # `sitzungsbox set-password --role <name>`; the throttle's key
    password_key: str  # settings key of the password hash
    session_prefix: str  # settings key prefix of its server-side sessions
    cookie_key: str  # entry in the signed Flask session cookie
    actor: str  # audit actor: <actor>@<client ip>
    blueprint: str  # the blueprint carrying its /login and /logout
    area: str  # path prefix of its pages: the only places `next` may lead after login
    home: str  # endpoint after login when there is no `next`
    stylesheet: str  # the login page's look (a static file)
    title_key: str  # i18n key of the login page's title
    no_password_key: str  # i18n key of "no password set yet"
    cli_label: str  # "Neues Passwort für <cli_label>"
    cli_sessions: str  # "Alle bisherigen <cli_sessions> wurden beendet."
    default: bool = False  # `sitzungsbox set-password` without --role

    @property
    def login_endpoint(self) -> str:
        return f"{self.blueprint}.login"

    @property
    def login_path(self) -> str:
        return f"{self.area}login"

    @property
    def command(self) -> str:
        """What an administrator types on the box to set this role's password (as root)."""
        return "sudo sitzungsbox set-password" + ("" if self.default else f" --role {self.name}")


# The *_key arguments name settings and i18n entries, not passwords.
CLERK = Role(
    name="sitzungsdienst", actor="clerk", blueprint="clerk", area="/clerk/", home="clerk.sessions",
    password_key="password:clerk", session_prefix="clerk_session:", cookie_key="clerk",  # noqa: S106
    stylesheet="clerk.css", title_key="login.title", no_password_key="login.no_password",  # noqa: S106
    cli_label="den Sitzungsdienst", cli_sessions="Anmeldungen", default=True,
)
TECHNICIAN = Role(
    name="techniker", actor="techniker", blueprint="dashboard", area="/technik/", home="dashboard.index",
    password_key="password:techniker", session_prefix="tech_session:", cookie_key="tech",  # noqa: S106
    stylesheet="dashboard/dashboard.css", title_key="tech.login.title",
    no_password_key="tech.login.no_password",  # noqa: S106
    cli_label="die Technik-Ansicht", cli_sessions="Technik-Anmeldungen",
)
ROLES = {role.name: role for role in (CLERK, TECHNICIAN)}

SESSION_HOURS = 12  # one long council day; then log in again


@dataclass(frozen=True)
class ThrottlePolicy:
    """After `limit` failures within `window` seconds, wait `base_wait`; each further failure doubles the wait up
    to `max_wait`. Failures are kept for max(window, max_wait) seconds, and at most `keep` of them."""

    limit: int = 5
    window: float = 900
    base_wait: float = 60
    max_wait: float = 900
    keep: int = 64

    @property
    def horizon(self) -> float:
        return max(self.window, self.max_wait)

    def recent(self, failures: list[float], now: float) -> list[float]:
        return sorted(t for t in failures if now - t < self.horizon)[-self.keep:]

    def wait_seconds(self, failures: list[float], now: float) -> int:
        """Whole seconds to wait before the next try may be checked (0: go ahead)."""
        times = self.recent(failures, now)
        if len(times) < self.limit:
            return 0
        wait = min(self.base_wait * 2 ** min(len(times) - self.limit, 32), self.max_wait)
        remaining = times[-1] + wait - now
        return max(0, int(remaining + 0.999))


THROTTLE = ThrottlePolicy()

"""What the demo directory hands to the rest of the local stack (and writes to directory.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Role = Literal["admin", "user", "disabled"]


@dataclass(frozen=True)
class DemoUser:
    username: str  # sAMAccountName; `CORP\<username>` and the UPN both bind
    password: str
    upn: str
    display_name: str
    role: Role  # "admin" only through nested membership: user ∈ IT Staff ∈ Link Admins


@dataclass(frozen=True)
class DirectoryInfo:
    ldap_url: str
    base_dn: str
    admin_group_dn: str
    ca_file: str
    realm: str
    netbios_domain: str
    users: list[DemoUser]

    def user(self, role: Role) -> DemoUser:
        """The demo user with this role (there is exactly one per role)."""
        for u in self.users:
            if u.role == role:
                return u
        raise KeyError(role)

    def env(self) -> dict[str, str]:
        """The contract's LDAP_* variables (section 4) pointing at this directory."""
        return {
            "LDAP_URL": self.ldap_url,
            "LDAP_BASE_DN": self.base_dn,
            "LDAP_ADMIN_GROUP_DN": self.admin_group_dn,
            "LDAP_CA_FILE": self.ca_file,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DirectoryInfo:
        fields = dict(data)
        fields["users"] = [DemoUser(**u) for u in data["users"]]
        return cls(**fields)

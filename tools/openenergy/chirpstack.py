"""Register OTAA devices in ChirpStack v4 through its gRPC API (PyPI chirpstack-api + grpcio).

    client = Client("chirpstack.example.org:8080", token)          # or "https://host:443"
    actions = register_device(client, creds, application_id, device_profile_id)
    # [("device", "created"), ("keys", "created")]; a rerun gives "unchanged" twice

Idempotent: an existing device is compared (name, device profile, JoinEUI) and updated when it
differs; existing keys are compared and updated when they differ (ChirpStack keeps the
device's DevNonce history across an update). A device that exists in another application is
refused rather than moved. For LoRaWAN 1.0.x the AppKey goes in DeviceKeys.nwk_key (ChirpStack's
API: "For LoRaWAN 1.0.x, use this field for the LoRaWAN 1.0.x 'AppKey'"); app_key stays empty.

Every failure is a ChirpStackError with a one-line message: UNAUTHENTICATED (the API token),
PERMISSION_DENIED, NOT_FOUND (application, device profile), UNAVAILABLE (server unreachable),
DEADLINE_EXCEEDED. The API token and the keys never appear in a message.
"""

import uuid

import grpc
from chirpstack_api import api, common
from errors import OpenEnergyError

DEFAULT_TIMEOUT_S = 10.0
OTAA_MAC_VERSIONS = (
    "LORAWAN_1_0_0",
    "LORAWAN_1_0_1",
    "LORAWAN_1_0_2",
    "LORAWAN_1_0_3",
    "LORAWAN_1_0_4",
)


class ChirpStackError(OpenEnergyError):
    """A ChirpStack API call that failed (one line, no token, no key)."""


def parse_server(text):
    """ "host:port", "http://host:port" or "https://host[:port]" -> (target, tls)."""
    if not text or not text.strip():
        raise ChirpStackError("--server: missing (host:port, e.g. localhost:8080)")
    text = text.strip().rstrip("/")
    tls = False
    for scheme, secure in (("https://", True), ("http://", False)):
        if text.startswith(scheme):
            text, tls = text[len(scheme) :], secure
    if "/" in text or not text:
        raise ChirpStackError("--server: expected host:port, got %r" % text)
    host, sep, port = text.rpartition(":")
    if not sep or not host or "]" in port:
        if not tls:
            raise ChirpStackError(
                "--server: expected host:port (e.g. localhost:8080), got %r" % text
            )
        return text + ":443", True
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ChirpStackError("--server: port must be 1..65535, got %r" % port)
    return text, tls


def check_uuid(option, value):
    """ChirpStack v4 ids are UUIDs: the canonical lowercase text of `value`."""
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise ChirpStackError(
            "%s: expected a UUID like 0f3c6a3e-6f2b-4a51-9d3b-2d3f8f1f5c10, got %r"
            % (option, value)
        ) from None


class Client:
    """A gRPC channel to one ChirpStack server, authenticated with an API token."""

    def __init__(self, server, token, tls=None, timeout=DEFAULT_TIMEOUT_S):
        target, scheme_tls = parse_server(server)
        self.target = target
        self.timeout = timeout
        if not token or not token.strip():
            raise ChirpStackError("--api-token: missing (or set CHIRPSTACK_API_TOKEN)")
        token = token.strip()
        if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in token):
            raise ChirpStackError("--api-token: expected printable ASCII without spaces")
        self._token = token
        self._metadata = (("authorization", "Bearer " + token),)
        if tls or (tls is None and scheme_tls):
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials())
        else:
            self._channel = grpc.insecure_channel(target)
        self.devices = api.DeviceServiceStub(self._channel)
        self.applications = api.ApplicationServiceStub(self._channel)
        self.profiles = api.DeviceProfileServiceStub(self._channel)
        self._secrets = [token]

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<chirpstack.Client %s>" % self.target

    def hide(self, *secrets):
        """Values never to show in an error message (keys of the device being registered)."""
        self._secrets.extend(s for s in secrets if s)

    def _redact(self, text):
        for secret in self._secrets:
            for form in {secret, secret.lower(), secret.upper()}:
                text = text.replace(form, "***")
        return text

    def call(self, method, request, what, not_found=None):
        """Run one unary call; RpcError -> ChirpStackError. not_found: None raises, any other
        value is returned on NOT_FOUND."""
        try:
            return method(request, metadata=self._metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            if code == grpc.StatusCode.NOT_FOUND and not_found is not None:
                return not_found
            raise self._error(code, exc, what) from None

    def _error(self, code, exc, what):
        detail = ""
        if hasattr(exc, "details"):
            detail = " ".join(str(exc.details() or "").split())
        detail = self._redact(detail)[:160]
        name = code.name if code is not None else "UNKNOWN"
        if code == grpc.StatusCode.UNAUTHENTICATED:
            text = (
                "ChirpStack at %s refused the API token (UNAUTHENTICATED): check --api-token "
                "or CHIRPSTACK_API_TOKEN" % self.target
            )
        elif code == grpc.StatusCode.PERMISSION_DENIED:
            text = "the API token may not %s (PERMISSION_DENIED)" % what
        elif code == grpc.StatusCode.UNAVAILABLE:
            text = "cannot reach ChirpStack at %s (UNAVAILABLE: %s)" % (self.target, detail)
            detail = ""
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            text = "ChirpStack at %s did not answer within %g s (DEADLINE_EXCEEDED) to %s" % (
                self.target,
                self.timeout,
                what,
            )
        elif code == grpc.StatusCode.NOT_FOUND:
            text = "%s: not found (NOT_FOUND)" % what
        else:
            text = "%s failed (%s)" % (what, name)
        if detail and code != grpc.StatusCode.UNAUTHENTICATED:
            text += ": " + detail
        return ChirpStackError(text)

    # ---- the calls register_device needs

    def get_application(self, application_id):
        return self.call(
            self.applications.Get,
            api.GetApplicationRequest(id=application_id),
            "application %s" % application_id,
        ).application

    def get_device_profile(self, profile_id):
        return self.call(
            self.profiles.Get,
            api.GetDeviceProfileRequest(id=profile_id),
            "device profile %s" % profile_id,
        ).device_profile

    def get_device(self, dev_eui):
        response = self.call(
            self.devices.Get,
            api.GetDeviceRequest(dev_eui=dev_eui),
            "read device %s" % dev_eui,
            False,
        )
        return response.device if response else None

    def get_keys(self, dev_eui):
        response = self.call(
            self.devices.GetKeys,
            api.GetDeviceKeysRequest(dev_eui=dev_eui),
            "read the keys of device %s" % dev_eui,
            False,
        )
        return response.device_keys if response else None


def _differences(current, wanted, fields):
    return [f for f in fields if getattr(current, f).lower() != getattr(wanted, f).lower()]


def check_profile(profile, profile_id):
    """Warnings about a device profile that is usable but unusual; ChirpStackError when it
    cannot take an OTAA LoRaWAN 1.0.x device."""
    if not profile.supports_otaa:
        raise ChirpStackError(
            "device profile %s (%s) does not support OTAA: tick 'Device supports OTAA' in its "
            "Join (OTAA / ABP) tab" % (profile_id, profile.name)
        )
    warnings = []
    mac = common.MacVersion.Name(profile.mac_version)
    if mac not in OTAA_MAC_VERSIONS:
        warnings.append(
            "device profile %s uses %s; openenergy sensors speak LoRaWAN 1.0.2"
            % (profile.name, mac)
        )
    region = common.Region.Name(profile.region)
    if region != "EU868":
        warnings.append(
            "device profile %s is for %s; openenergy sensors are EU868" % (profile.name, region)
        )
    return warnings


def register_device(client, creds, application_id, device_profile_id, description=""):
    """Create or update the device and its OTAA keys; returns [(what, action)]."""
    dev_eui = creds.dev_eui.hex()
    app_key = creds.app_key.hex()
    client.hide(app_key)
    wanted = api.Device(
        dev_eui=dev_eui,
        name=creds.name,
        description=description,
        application_id=application_id,
        device_profile_id=device_profile_id,
        join_eui=creds.join_eui.hex(),
    )
    actions = []
    current = client.get_device(dev_eui)
    if current is None:
        client.call(
            client.devices.Create,
            api.CreateDeviceRequest(device=wanted),
            "create device %s" % dev_eui,
        )
        actions.append(("device", "created"))
    else:
        if current.application_id.lower() != application_id.lower():
            raise ChirpStackError(
                "device %s already exists in application %s, not %s: delete it there first or "
                "register it into that application"
                % (dev_eui, current.application_id, application_id)
            )
        changed = _differences(current, wanted, ("name", "device_profile_id", "join_eui"))
        if description and current.description != description:
            changed.append("description")
        if changed:
            update = api.Device()
            update.CopyFrom(current)
            update.name = creds.name
            update.device_profile_id = device_profile_id
            update.join_eui = creds.join_eui.hex()
            if description:
                update.description = description
            client.call(
                client.devices.Update,
                api.UpdateDeviceRequest(device=update),
                "update device %s" % dev_eui,
            )
            actions.append(("device", "updated (%s)" % ", ".join(changed)))
        else:
            actions.append(("device", "unchanged"))
    keys = api.DeviceKeys(dev_eui=dev_eui, nwk_key=app_key)
    current_keys = client.get_keys(dev_eui)
    if current_keys is None:
        client.call(
            client.devices.CreateKeys,
            api.CreateDeviceKeysRequest(device_keys=keys),
            "create the keys of device %s" % dev_eui,
        )
        actions.append(("keys", "created"))
    elif current_keys.nwk_key.lower() != app_key:
        client.call(
            client.devices.UpdateKeys,
            api.UpdateDeviceKeysRequest(device_keys=keys),
            "update the keys of device %s" % dev_eui,
        )
        actions.append(("keys", "updated (AppKey differed)"))
    else:
        actions.append(("keys", "unchanged"))
    return actions

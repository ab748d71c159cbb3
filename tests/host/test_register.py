"""`openenergy register` against an in-process ChirpStack v4 gRPC server.

The fake server is built on chirpstack-api's own service definitions (DeviceServiceServicer,
ApplicationServiceServicer, DeviceProfileServiceServicer) with grpcio, and checks what the real
one checks on these calls: the bearer token, existing ids, EUI and key formats, duplicates.
"""

import socket
import threading
import time
import uuid
from concurrent import futures

import grpc
import pytest
from chirpstack_api import api, common
from google.protobuf import empty_pb2
from openenergy import chirpstack, cli, provisioning

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.test-token"
APP_ID = str(uuid.UUID(int=1))
OTHER_APP_ID = str(uuid.UUID(int=2))
PROFILE_ID = str(uuid.UUID(int=3))
ABP_PROFILE_ID = str(uuid.UUID(int=4))
KEY = "2B7E151628AED2A6ABF7158809CF4F3C"


def _hex_ok(text, digits):
    return len(text) == digits and all(c in "0123456789abcdefABCDEF" for c in text)


class FakeChirpStack:
    def __init__(self):
        self.applications = {
            APP_ID: api.Application(id=APP_ID, name="batiment-a"),
            OTHER_APP_ID: api.Application(id=OTHER_APP_ID, name="batiment-b"),
        }
        self.profiles = {
            PROFILE_ID: api.DeviceProfile(
                id=PROFILE_ID,
                name="openenergy-sensor",
                region=common.Region.EU868,
                mac_version=common.MacVersion.LORAWAN_1_0_2,
                supports_otaa=True,
            ),
            ABP_PROFILE_ID: api.DeviceProfile(id=ABP_PROFILE_ID, name="abp", supports_otaa=False),
        }
        self.devices = {}
        self.keys = {}
        self.calls = []
        self.delay = 0.0

    def check(self, context, method):
        self.calls.append(method)
        if self.delay:
            time.sleep(self.delay)
        if dict(context.invocation_metadata()).get("authorization") != "Bearer " + TOKEN:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "Unauthenticated: invalid token")

    def eui(self, context, text):
        if not _hex_ok(text, 16):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid EUI64")
        return text.lower()


def services(fake):
    class Applications(api.ApplicationServiceServicer):
        def Get(self, request, context):
            fake.check(context, "Application.Get")
            if request.id not in fake.applications:
                context.abort(
                    grpc.StatusCode.NOT_FOUND, f"Object does not exist (id: {request.id})"
                )
            return api.GetApplicationResponse(application=fake.applications[request.id])

    class Profiles(api.DeviceProfileServiceServicer):
        def Get(self, request, context):
            fake.check(context, "DeviceProfile.Get")
            if request.id not in fake.profiles:
                context.abort(
                    grpc.StatusCode.NOT_FOUND, f"Object does not exist (id: {request.id})"
                )
            return api.GetDeviceProfileResponse(device_profile=fake.profiles[request.id])

    class Devices(api.DeviceServiceServicer):
        def Create(self, request, context):
            fake.check(context, "Device.Create")
            device = api.Device()
            device.CopyFrom(request.device)
            device.dev_eui = fake.eui(context, device.dev_eui)
            device.join_eui = fake.eui(context, device.join_eui or "0" * 16)
            if device.dev_eui in fake.devices:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "Object already exists")
            if device.application_id not in fake.applications:
                context.abort(grpc.StatusCode.NOT_FOUND, "Object does not exist")
            fake.devices[device.dev_eui] = device
            return empty_pb2.Empty()

        def Get(self, request, context):
            fake.check(context, "Device.Get")
            dev_eui = fake.eui(context, request.dev_eui)
            if dev_eui not in fake.devices:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Object does not exist (id: {dev_eui})")
            return api.GetDeviceResponse(device=fake.devices[dev_eui])

        def Update(self, request, context):
            fake.check(context, "Device.Update")
            dev_eui = fake.eui(context, request.device.dev_eui)
            if dev_eui not in fake.devices:
                context.abort(grpc.StatusCode.NOT_FOUND, "Object does not exist")
            device = api.Device()
            device.CopyFrom(request.device)
            device.dev_eui = dev_eui
            device.join_eui = fake.eui(context, device.join_eui)
            fake.devices[dev_eui] = device
            return empty_pb2.Empty()

        def CreateKeys(self, request, context):
            fake.check(context, "Device.CreateKeys")
            keys = request.device_keys
            dev_eui = fake.eui(context, keys.dev_eui)
            if dev_eui not in fake.devices:
                context.abort(grpc.StatusCode.NOT_FOUND, "Object does not exist")
            if dev_eui in fake.keys:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "Object already exists")
            if not _hex_ok(keys.nwk_key, 32) or (keys.app_key and not _hex_ok(keys.app_key, 32)):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid AES128 key")
            fake.keys[dev_eui] = (keys.nwk_key.lower(), keys.app_key or "0" * 32, [])
            return empty_pb2.Empty()

        def GetKeys(self, request, context):
            fake.check(context, "Device.GetKeys")
            dev_eui = fake.eui(context, request.dev_eui)
            if dev_eui not in fake.keys:
                context.abort(grpc.StatusCode.NOT_FOUND, "Object does not exist")
            nwk_key, app_key, _ = fake.keys[dev_eui]
            return api.GetDeviceKeysResponse(
                device_keys=api.DeviceKeys(dev_eui=dev_eui, nwk_key=nwk_key, app_key=app_key)
            )

        def UpdateKeys(self, request, context):
            fake.check(context, "Device.UpdateKeys")
            keys = request.device_keys
            dev_eui = fake.eui(context, keys.dev_eui)
            if dev_eui not in fake.keys:
                context.abort(grpc.StatusCode.NOT_FOUND, "Object does not exist")
            nonces = fake.keys[dev_eui][2]  # ChirpStack keeps the DevNonce history
            fake.keys[dev_eui] = (keys.nwk_key.lower(), keys.app_key or "0" * 32, nonces)
            return empty_pb2.Empty()

    return Applications(), Profiles(), Devices()


@pytest.fixture
def chirpstack_server():
    fake = FakeChirpStack()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    apps, profiles, devices = services(fake)
    api.add_ApplicationServiceServicer_to_server(apps, server)
    api.add_DeviceProfileServiceServicer_to_server(profiles, server)
    api.add_DeviceServiceServicer_to_server(devices, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    fake.address = f"127.0.0.1:{port}"
    yield fake
    server.stop(grace=None)


@pytest.fixture
def creds_files(tmp_path):
    out = tmp_path / "credentials"
    paths = []
    for name, dev_eui, key in (
        ("chaufferie", "70B3D57ED0000001", KEY),
        ("compteur-eau", "70B3D57ED0000002", None),
    ):
        request = provisioning.Request(name=name, dev_eui=dev_eui, app_key=key)
        paths.append(str(provisioning.provision(request, out).path))
    return paths


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "CHIRPSTACK_SERVER",
        "CHIRPSTACK_API_TOKEN",
        "CHIRPSTACK_APPLICATION_ID",
        "CHIRPSTACK_DEVICE_PROFILE_ID",
    ):
        monkeypatch.delenv(name, raising=False)


def run(capsys, server, *args, token=TOKEN, app=APP_ID, profile=PROFILE_ID):
    argv = ["register", *args, "--server", server, "--application-id", app]
    argv += ["--device-profile-id", profile, "--api-token", token]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def secrets_of(paths):
    keys = [provisioning.load_credentials(p).app_key.hex() for p in paths]
    return keys + [k.upper() for k in keys] + [TOKEN]


def assert_clean(text, paths):
    for secret in secrets_of(paths):
        assert secret not in text
    assert "Traceback" not in text


def test_create_then_idempotent_rerun(chirpstack_server, creds_files, capsys):
    fake = chirpstack_server
    code, out, err = run(capsys, fake.address, *creds_files)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (
        f"ChirpStack {fake.address}: application 'batiment-a', device profile 'openenergy-sensor'"
    )
    assert lines[1] == "chaufferie 70B3D57ED0000001: device created, keys created"
    assert lines[2] == "compteur-eau 70B3D57ED0000002: device created, keys created"
    device = fake.devices["70b3d57ed0000001"]
    assert (device.name, device.application_id, device.device_profile_id) == (
        "chaufferie",
        APP_ID,
        PROFILE_ID,
    )
    assert device.join_eui == "0000000000000000"
    nwk_key, app_key, _ = fake.keys["70b3d57ed0000001"]
    assert nwk_key == KEY.lower() and app_key == "0" * 32  # LoRaWAN 1.0.x: AppKey in nwk_key
    second = provisioning.load_credentials(creds_files[1]).app_key.hex()
    assert fake.keys["70b3d57ed0000002"][0] == second
    assert_clean(out + err, creds_files)

    fake.calls.clear()
    code, out, err = run(capsys, fake.address, *creds_files)
    assert code == 0, err
    assert out.splitlines()[1:] == [
        "chaufferie 70B3D57ED0000001: device unchanged, keys unchanged",
        "compteur-eau 70B3D57ED0000002: device unchanged, keys unchanged",
    ]
    assert not [c for c in fake.calls if not c.endswith(("Get", "GetKeys"))]


def test_differences_are_updated_in_place(chirpstack_server, creds_files, capsys):
    fake = chirpstack_server
    run(capsys, fake.address, creds_files[0])
    fake.keys["70b3d57ed0000001"][2].append(1234)
    fake.devices["70b3d57ed0000001"].name = "old-name"
    fake.devices["70b3d57ed0000001"].tags["site"] = "lyon"
    fake.keys["70b3d57ed0000001"] = ("11" * 16, "0" * 32, fake.keys["70b3d57ed0000001"][2])
    code, out, err = run(capsys, fake.address, creds_files[0])
    assert code == 0, err
    assert out.splitlines()[1] == (
        "chaufferie 70B3D57ED0000001: device updated (name), keys updated (AppKey differed)"
    )
    device = fake.devices["70b3d57ed0000001"]
    assert device.name == "chaufferie" and device.tags["site"] == "lyon"
    assert fake.keys["70b3d57ed0000001"] == (KEY.lower(), "0" * 32, [1234])
    assert_clean(out + err, creds_files)


def test_flags_instead_of_a_file_and_environment(chirpstack_server, capsys, monkeypatch):
    monkeypatch.setenv("CHIRPSTACK_API_TOKEN", TOKEN)
    monkeypatch.setenv("CHIRPSTACK_SERVER", chirpstack_server.address)
    monkeypatch.setenv("CHIRPSTACK_APPLICATION_ID", APP_ID)
    monkeypatch.setenv("CHIRPSTACK_DEVICE_PROFILE_ID", PROFILE_ID)
    code = cli.main(["register", "--dev-eui", "70b3d57ed00000aa", "--app-key", KEY])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[1] == "70b3d57ed00000aa 70B3D57ED00000AA: device created, keys created"
    assert KEY not in out + err and TOKEN not in out + err


def test_bad_token(chirpstack_server, creds_files, capsys):
    code, out, err = run(capsys, chirpstack_server.address, *creds_files, token="wrong-token-1234")
    assert code == 2 and out == ""
    assert err == (
        f"openenergy register: error: ChirpStack at {chirpstack_server.address} refused the API "
        "token (UNAUTHENTICATED): check --api-token or CHIRPSTACK_API_TOKEN\n"
    )
    assert "wrong-token-1234" not in err
    assert not chirpstack_server.devices


def test_server_down(creds_files, capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    code, out, err = run(capsys, f"127.0.0.1:{port}", *creds_files)
    assert time.monotonic() - started < 10
    assert code == 2 and out == ""
    assert err.startswith(
        f"openenergy register: error: cannot reach ChirpStack at 127.0.0.1:{port} (UNAVAILABLE"
    )
    assert err.count("\n") == 1
    assert_clean(err, creds_files)


def test_slow_server_times_out(chirpstack_server, creds_files, capsys):
    chirpstack_server.delay = 1.0
    code, _, err = run(capsys, chirpstack_server.address, creds_files[0], "--timeout", "0.2")
    assert code == 2 and "did not answer within 0.2 s (DEADLINE_EXCEEDED)" in err


@pytest.mark.parametrize(
    "app, profile, expected",
    [
        (
            str(uuid.UUID(int=9)),
            PROFILE_ID,
            f"application {uuid.UUID(int=9)}: not found (NOT_FOUND)",
        ),
        (
            APP_ID,
            str(uuid.UUID(int=9)),
            f"device profile {uuid.UUID(int=9)}: not found (NOT_FOUND)",
        ),
        (APP_ID, ABP_PROFILE_ID, "does not support OTAA"),
        ("not-a-uuid", PROFILE_ID, "--application-id: expected a UUID"),
    ],
)
def test_unknown_ids(chirpstack_server, creds_files, capsys, app, profile, expected):
    code, out, err = run(capsys, chirpstack_server.address, *creds_files, app=app, profile=profile)
    assert code == 2 and out == "" and expected in err and err.count("\n") == 1
    assert not chirpstack_server.devices


def test_device_of_another_application_is_not_moved(chirpstack_server, creds_files, capsys):
    run(capsys, chirpstack_server.address, creds_files[0], app=OTHER_APP_ID)
    code, _, err = run(capsys, chirpstack_server.address, creds_files[0])
    assert code == 2 and f"already exists in application {OTHER_APP_ID}" in err
    assert chirpstack_server.devices["70b3d57ed0000001"].application_id == OTHER_APP_ID


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["register", "x.toml"], "--server: missing"),
        (["register", "x.toml", "--server", "h:1"], "--api-token: missing"),
        (["register", "--server", "h:1", "--api-token", "t"], "--application-id: missing"),
    ],
)
def test_missing_settings(capsys, argv, expected):
    assert cli.main(argv) == 2
    assert expected in capsys.readouterr().err


def test_bad_credentials_file_names_the_field(chirpstack_server, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\ndev_eui = "70B3D57ED00000"\napp_key = "%s"\n' % KEY)
    code, _, err = run(capsys, chirpstack_server.address, str(path))
    assert code == 2 and "dev_eui: expected 16 hex digits" in err and KEY not in err


def test_parse_server():
    assert chirpstack.parse_server("localhost:8080") == ("localhost:8080", False)
    assert chirpstack.parse_server("http://cs:8080/") == ("cs:8080", False)
    assert chirpstack.parse_server("https://cs.example.org") == ("cs.example.org:443", True)
    assert chirpstack.parse_server("https://cs:8443") == ("cs:8443", True)
    for bad in ("", "localhost", "cs:99999", "cs:80/api"):
        with pytest.raises(chirpstack.ChirpStackError, match="--server"):
            chirpstack.parse_server(bad)


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        cli.main(["register", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "CHIRPSTACK_API_TOKEN" in out and "UNAUTHENTICATED" in out


def test_client_repr_hides_the_token():
    client = chirpstack.Client("127.0.0.1:1", TOKEN)
    try:
        assert TOKEN not in repr(client) and TOKEN not in str(vars(client).get("target"))
    finally:
        client.close()


def test_concurrent_runs_do_not_duplicate(chirpstack_server, creds_files, capsys):
    # Two technicians registering the same batch: the server's ALREADY_EXISTS surfaces as one
    # clear line for the loser; the winner's device and keys stay whole.
    errors = []

    def register_once():
        try:
            with chirpstack.Client(chirpstack_server.address, TOKEN) as client:
                creds = provisioning.load_credentials(creds_files[0])
                chirpstack.register_device(client, creds, APP_ID, PROFILE_ID)
        except chirpstack.ChirpStackError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=register_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(chirpstack_server.devices) == 1 and len(chirpstack_server.keys) == 1
    for text in errors:
        assert "(ALREADY_EXISTS)" in text and KEY not in text

"""A CSV as a spreadsheet saves it, upserted with typed custom fields."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from contactsync._cli import main
from contactsync.provider import default_registry
from contactsync.testing import EmulatorApp, serve_in_thread

CONFIG = """
[tenants.gym]
provider = "gleantap"
base_url = "{url}"
[tenants.gym.options]
app_id = "{app_id}"
[tenants.gym.credentials]
api_key = "{api_key}"
secret_key = "{secret_key}"
[tenants.gym.custom_fields]
loyalty = {{ id = "loyalty_points", type = "int" }}
member = {{ id = "is_member", type = "bool" }}
"""

# Excel's "CSV UTF-8" in a locale whose list separator is ";": a BOM, CRLF, human headers.
SHEET = (
    "\ufeffExternal ID;First Name;Last Name;Email;Custom_Fields.loyalty;custom_fields.member\r\n"
    "m1;Ann;Lee;ann@example.com;10;yes\r\n"
    "m2;Bo;Ray;bo@example.com;ten;no\r\n"
    "m3;Cy;Moe;cy@example.com;;0\r\n"
)


def test_an_excel_csv_upserts_with_typed_custom_fields(tmp_path: Path) -> None:
    cls = default_registry.get("gleantap")
    app = EmulatorApp(cls.create_emulator())
    server, url = serve_in_thread(app)
    try:
        config = tmp_path / "c.toml"
        config.write_text(
            CONFIG.format(
                url=url,
                app_id=cls.demo_options["app_id"],
                **cls.demo_credentials,
            )
        )
        sheet = tmp_path / "members.csv"
        sheet.write_bytes(SHEET.encode("utf-8"))
        result = CliRunner().invoke(
            main, ["upsert", "--config", str(config), "--tenant", "gym", str(sheet)]
        )
        assert result.exit_code == 2, result.output  # the "ten" row
        assert "rejected 1" in result.output
        assert "e.g. input 1: custom_fields.loyalty: must be an integer" in result.output
        stored = {c["user_id"]: c for c in app.emulator.contacts()}
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(stored) == ["m1", "m3"]
    assert stored["m1"]["loyalty_points"] == 10
    assert stored["m1"]["is_member"] is True
    assert stored["m3"]["is_member"] is False
    assert "loyalty_points" not in stored["m3"]

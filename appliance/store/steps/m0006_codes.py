"""Personal member codes (issue 6): the way in for members behind external access points, where no hostapd
reports a keyid. Existing members get a code here; a trigger gives one to any row inserted without, so no
member is ever without a code. Codes are unique across sessions (a code alone names its member)."""

from appliance.captive.codes import sql_random_code

VERSION = 6
# RANDOM_CODE: a constant SQL expression built from our own alphabet (no input reaches it).
SQL = """
        ALTER TABLE members ADD COLUMN code TEXT;
        UPDATE members SET code = RANDOM_CODE;
        CREATE UNIQUE INDEX members_code ON members(code);
        CREATE TRIGGER members_code_default AFTER INSERT ON members FOR EACH ROW WHEN NEW.code IS NULL
        BEGIN
            UPDATE members SET code = RANDOM_CODE WHERE id = NEW.id;
        END;
        """.replace("RANDOM_CODE", sql_random_code())

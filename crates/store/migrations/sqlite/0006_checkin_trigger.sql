-- A check-in record touches its device in the same statement: the hot path of a check-in is
-- one INSERT (no explicit transaction, one round trip to the database thread).
CREATE TRIGGER checkins_touch_device AFTER INSERT ON checkins
BEGIN
    UPDATE devices SET last_checkin_at = NEW.at WHERE id = NEW.device_id;
END;

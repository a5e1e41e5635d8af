//! Apple MDM device input: check-ins, reports and command envelopes (XML plists).
#![no_main]

use ferrocore_apple::{checkin, command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = checkin::parse_checkin(data) {
        assert!(!m.enrollment().device_id().is_empty());
    }
    if let Ok(r) = command::parse_report(data) {
        assert!(r.status == command::Status::Idle || r.command_uuid.is_some());
        if let Some(rt) = r.request_type.as_deref() {
            let _ = r.response(rt);
        }
    }
    if let Ok(c) = command::parse_command(data) {
        // What we parse, we write back identically.
        let xml = c.to_xml().expect("a parsed command serialises");
        assert_eq!(command::parse_command(&xml).expect("re-parse"), c);
    }
});

//! The admin `PUT /api/apps/{app}` body decoder: never panics; an app it accepts can be
//! stored and read back (`to_json` → `from_stored`), and replaced by the same body.
#![no_main]

use autodeploy::App;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fill = |b: &mut [u8]| b.fill(b'k');
    if let Ok(app) = App::from_put("shop", data, None, &mut fill) {
        let stored = app.to_json();
        if let Err(e) = App::from_stored("shop", &stored) {
            panic!("accepted app does not read back: {e:?}\nstored: {stored}");
        }
        let _ = App::from_put("shop", data, Some(&app), &mut fill);
        let _ = app.view("https://hooks.example.com");
    }
});

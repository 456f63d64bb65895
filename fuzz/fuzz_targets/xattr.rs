//! Extended attributes: host names and sealed values. A value that opens
//! is the only value ever sealed; a name that decrypts re-encrypts to the
//! same host name.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vault_core::XattrObject;

fuzz_target!(|data: &[u8]| {
    let c = pivault_fuzz::cipher(0);
    let x = c.xattr_cipher().expect("xattr keys");
    let obj = XattrObject::File(&pivault_fuzz::FILE_ID);
    if let Ok(Some(name)) = x.plain_name(obj, data) {
        assert_eq!(
            x.host_name(obj, &name).expect("re-encrypts").as_bytes(),
            data
        );
    }
    if let Ok(v) = x.open_value(obj, pivault_fuzz::XATTR_NAME, data) {
        assert_eq!(v, pivault_fuzz::XATTR_VALUE);
    }
});

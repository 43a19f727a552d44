use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;

use test_servers::{FormatOptions, JuiceFs, MountOptions};

use crate::{listening, mounted};

#[test]
fn a_file_written_on_one_mount_is_read_whole_on_another() {
    let mut volume = JuiceFs::start(&FormatOptions::default()).unwrap();
    let mounts = volume.mount(2, &MountOptions::default()).unwrap();
    let (a, b) = (mounts[0].path().to_owned(), mounts[1].path().to_owned());
    assert_ne!(a, b);
    assert!(mounted(&a) && mounted(&b));

    let content: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
    let mut file = fs::File::create(a.join("data")).unwrap();
    file.write_all(&content).unwrap();
    file.sync_all().unwrap();
    drop(file);
    assert_eq!(fs::read(b.join("data")).unwrap(), content);

    // One file, one inode number, seen from two clients with distinct devices.
    let (on_a, on_b) = (
        fs::metadata(a.join("data")).unwrap(),
        fs::metadata(b.join("data")).unwrap(),
    );
    assert_eq!(on_a.ino(), on_b.ino());
    assert_ne!(on_a.dev(), on_b.dev());

    let redis_port = volume.redis().port();
    drop(volume);
    assert!(!mounted(&a) && !mounted(&b));
    assert!(!listening(redis_port));
}

#[test]
fn mount_options_reach_the_client_and_every_mount_goes_on_drop() {
    let mut volume = JuiceFs::start(&FormatOptions::juicefs_defaults()).unwrap();
    volume.mount(1, &MountOptions::no_kernel_caches()).unwrap();
    volume.mount(1, &MountOptions::default()).unwrap();
    let paths: Vec<_> = volume
        .mounts()
        .iter()
        .map(|m| m.path().to_owned())
        .collect();
    assert_eq!(volume.mounts()[1].index(), 1);
    // The client logs its options; the trash is on with JuiceFS's defaults.
    assert!(paths[0].join(".trash").exists());
    fs::write(paths[0].join("x"), b"1").unwrap();
    fs::write(paths[0].join("x"), b"2").unwrap();
    assert_eq!(fs::read(paths[1].join("x")).unwrap(), b"2");
    volume.unmount_all().unwrap();
    assert!(volume.mounts().is_empty());
    assert!(paths.iter().all(|p| !mounted(p)));
}

#[test]
fn a_panicking_test_still_unmounts() {
    let mut paths = Vec::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut volume = JuiceFs::start(&FormatOptions::default()).unwrap();
        for mount in volume.mount(2, &MountOptions::default()).unwrap() {
            paths.push(mount.path().to_owned());
        }
        // A file still open in the mount when the test fails: dropped
        // before the volume, as locals are dropped in reverse order.
        let _open = fs::File::create(paths[0].join("open")).unwrap();
        panic!("the test fails while mounted");
    }));
    assert!(outcome.is_err());
    assert_eq!(paths.len(), 2);
    assert!(paths.iter().all(|p| !mounted(p)));
}

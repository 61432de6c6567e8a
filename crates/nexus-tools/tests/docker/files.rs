//! Files going in through the run's stdin and coming back from /work/out.

use bytes::Bytes;
use nexus_core::{Sandbox as _, SandboxError, SandboxFile};
use tokio_util::sync::CancellationToken;

use crate::support::{harness, python, shell};

fn file(path: &str, bytes: &'static [u8]) -> SandboxFile {
    SandboxFile {
        path: path.to_owned(),
        bytes: Bytes::from_static(bytes),
    }
}

#[tokio::test]
async fn files_go_in_and_regular_files_of_out_come_back() {
    let Some(h) = harness().await else { return };
    let mut request = python(
        "import os\n\
         print(open('data.csv').read(), end='')\n\
         print(open('/work/sub/dir/x.txt').read(), end='')\n\
         os.makedirs('/work/out/nested')\n\
         open('/work/out/result.txt', 'w').write('sum=6\\n')\n\
         open('/work/out/nested/b.bin', 'wb').write(bytes(range(256)))\n\
         os.symlink('/etc/passwd', '/work/out/link')\n\
         os.link('/work/out/result.txt', '/work/out/hard.txt')\n\
         os.mkfifo('/work/out/fifo')\n",
    );
    request.files = vec![
        file("data.csv", b"a,b\n1,2\n"),
        file("sub/dir/x.txt", b"deep\n"),
    ];
    let result = h.run(request).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(result.stdout, "a,b\n1,2\ndeep\n");
    let mut files: Vec<(String, Bytes)> = result
        .files
        .into_iter()
        .map(|f| (f.path, f.bytes))
        .collect();
    files.sort();
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    // No symlink (not followed), no fifo; the hard link comes back as a regular file.
    assert_eq!(names, ["hard.txt", "nested/b.bin", "result.txt"]);
    assert_eq!(files[0].1, Bytes::from_static(b"sum=6\n"));
    assert_eq!(files[1].1.len(), 256);
    assert!(!result.truncated);
    h.assert_none_left().await;
}

#[tokio::test]
async fn returned_files_stop_at_their_cap() {
    let Some(h) = harness().await else { return };
    let mut request = shell(
        "mkdir -p out\n\
         head -c 600 /dev/zero > out/a\n\
         head -c 600 /dev/zero > out/b\n\
         head -c 5000 /dev/zero > out/huge\n",
    );
    request.limits.files_bytes = 1000;
    let result = h.run(request).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(result.files.len(), 1, "{result:?}");
    assert_eq!(result.files[0].bytes.len(), 600);
    assert!(result.truncated);
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_sparse_file_larger_than_the_disk_is_not_streamed_back() {
    let Some(h) = harness().await else { return };
    let result = h
        .run(shell(
            "mkdir -p out && truncate -s 100G out/sparse && echo done",
        ))
        .await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert!(result.files.is_empty());
    assert!(result.truncated);
    h.assert_none_left().await;
}

#[tokio::test]
async fn file_paths_escaping_the_working_directory_are_refused() {
    let Some(h) = harness().await else { return };
    for path in ["../etc/x", "/etc/x", "a/../../x", "out", ""] {
        let mut request = shell("true");
        request.files = vec![file(path, b"x")];
        let err = h
            .sandbox
            .run(request, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, SandboxError::Invalid { .. }),
            "{path}: {err:?}"
        );
    }
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_program_ignoring_its_input_files_still_runs() {
    let Some(h) = harness().await else { return };
    let mut request = shell("ls /work | sort");
    request.files = vec![file("a.txt", b"a"), file("b.txt", b"b")];
    let result = h.run(request).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(result.stdout, "a.txt\nb.txt\nout\n");
    h.assert_none_left().await;
}

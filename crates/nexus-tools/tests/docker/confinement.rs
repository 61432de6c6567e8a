//! What code sees inside the sandbox: it runs, exits, has no network by default, cannot write
//! outside /work, is not root.

use nexus_core::Sandbox as _;

use crate::support::{harness, python, shell};

#[tokio::test]
async fn print_one_runs_and_leaves_no_container() {
    let Some(h) = harness().await else { return };
    h.sandbox.check().await.unwrap();
    let result = h.run(python("print(1)")).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(result.stdout, "1\n");
    assert_eq!(result.stderr, "");
    assert!(!result.timed_out && !result.oom_killed && !result.truncated);
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_non_zero_exit_and_stderr_are_reported() {
    let Some(h) = harness().await else { return };
    let result = h
        .run(python(
            "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)",
        ))
        .await;
    assert_eq!(result.exit_code, Some(3));
    assert_eq!(result.stderr, "bad input\n");
    let result = h.run(shell("echo out; exit 7")).await;
    assert_eq!(result.exit_code, Some(7));
    assert_eq!(result.stdout, "out\n");
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_process_killing_itself_is_not_reported_as_out_of_memory() {
    let Some(h) = harness().await else { return };
    let result = h.run(shell("kill -9 $$")).await;
    assert_eq!(result.exit_code, Some(137), "{result:?}");
    assert!(!result.oom_killed);
    h.assert_none_left().await;
}

/// The docker bridge's gateway: an address of this machine that a container with network
/// reaches, so nothing leaves the machine whatever happens.
async fn bridge_gateway(h: &crate::support::Harness) -> String {
    let network = h
        .docker
        .inspect_network(
            "bridge",
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap();
    network
        .ipam
        .and_then(|ipam| ipam.config)
        .and_then(|configs| configs.into_iter().find_map(|c| c.gateway))
        .unwrap_or_else(|| "172.17.0.1".to_owned())
}

#[tokio::test]
async fn outbound_network_is_blocked_by_default() {
    let Some(h) = harness().await else { return };
    let gateway = bridge_gateway(&h).await;
    let code = format!(
        "import os, socket\n\
         print(sorted(os.listdir('/sys/class/net')))\n\
         s = socket.socket()\n\
         s.settimeout(3)\n\
         try:\n    s.connect(('{gateway}', 9))\n    print('connected')\n\
         except OSError as e:\n    print('refused', e.errno)\n"
    );
    let result = h.run(python(&code)).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    // Only the loopback interface, and no route anywhere: ENETUNREACH at once.
    assert_eq!(result.stdout, "['lo']\nrefused 101\n", "{result:?}");
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_run_allowed_the_network_gets_an_interface_and_a_route() {
    let Some(h) = harness().await else { return };
    // Shown without sending anything: the interface and the default route exist.
    let mut request = python(
        "import os\n\
         print(sorted(os.listdir('/sys/class/net')))\n\
         routes = open('/proc/net/route').read().splitlines()[1:]\n\
         print('default route', any(r.split()[1] == '00000000' for r in routes))\n",
    );
    request.network = true;
    let result = h.run(request).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(result.stdout, "['eth0', 'lo']\ndefault route True\n");
    h.assert_none_left().await;
}

#[tokio::test]
async fn writes_outside_work_are_refused_and_the_user_is_not_root() {
    let Some(h) = harness().await else { return };
    let result = h
        .run(shell(
            "id -u; id -g\n\
             for p in /etc/x /usr/x /x /root/x /var/x; do\n\
               if touch $p 2>/dev/null; then echo \"wrote $p\"; fi\n\
             done\n\
             echo ok > /work/x && cat /work/x\n\
             echo ok > /tmp/x && cat /tmp/x\n\
             cp /bin/true /tmp/t && /tmp/t || echo 'tmp noexec'\n\
             cp /bin/true /work/t && /work/t && echo 'work exec'\n",
        ))
        .await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(
        result.stdout, "65534\n65534\nok\nok\ntmp noexec\nwork exec\n",
        "{result:?}"
    );
    h.assert_none_left().await;
}

#[tokio::test]
async fn the_working_directory_is_capped_at_its_disk_limit() {
    let Some(h) = harness().await else { return };
    let mut request = shell("head -c 3000000 /dev/zero > /work/big; echo $?");
    request.limits.disk_bytes = 1024 * 1024;
    let result = h.run(request).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(result.stdout, "1\n");
    assert!(result.stderr.contains("No space left"), "{result:?}");
    h.assert_none_left().await;
}

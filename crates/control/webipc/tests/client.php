<?php
// A WebIPC client speaking as TWCManager's PHP page does (written for these tests): the queue
// key is ftok(<dir>, "T"); a request is pack("LSa*", time, id, text) sent as type 2; a query
// waits up to 5 s for a type-1 reply carrying its id (a reply for another id that is younger
// than 30 s goes back on the queue); "packets" replies start with a count byte.
//
// php client.php DIR query|command|packets TEXT
[$self, $dir, $mode, $text] = $argv;
$text = str_replace('\n', "\n", $text);
$queue = msg_get_queue(ftok($dir, "T"), 0666);

function send_msg($queue, $time, $id, $text, $type = 2) {
    $err = 0;
    if (!msg_send($queue, $type, pack("LSa*", $time, $id, $text), false, false, $err)) {
        fwrite(STDERR, "msg_send failed: $err\n");
        exit(3);
    }
}

if ($mode === 'command') {
    send_msg($queue, time(), 0, $text);
    exit(0);
}
$id = rand(1, 65535);
send_msg($queue, time(), $id, $text);
$packets = 0;
$result = '';
for ($i = 0; $i < 50; $i++) {
    $type = 0;
    $msg = '';
    $err = 0;
    if (msg_receive($queue, 1, $type, 300, $msg, false, MSG_IPC_NOWAIT | MSG_NOERROR, $err)) {
        $m = unpack("Ltime/SID/a*msg", $msg);
        if ($m['ID'] == $id) {
            if ($mode !== 'packets') {
                echo $m['msg'];
                exit(0);
            }
            if ($packets == 0) {
                $packets = ord($m['msg']);
            } else {
                $result .= $m['msg'];
                if (--$packets == 0) {
                    echo $result;
                    exit(0);
                }
            }
            continue;
        }
        if (time() - $m['time'] < 30) {
            send_msg($queue, $m['time'], $m['ID'], $m['msg'], 1);
        }
    } elseif ($err != 42) {
        fwrite(STDERR, "msg_receive failed: $err\n");
        exit(3);
    }
    usleep(100000);
}
fwrite(STDERR, "timed out waiting for the reply\n");
exit(4);

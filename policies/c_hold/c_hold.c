/*
 * c_hold: a policy node in C that speaks the roarm-hil bus contract
 * (docs/contracts.md, "Wire format") with libzmq alone: msgpack headers and
 * protobuf payloads are encoded and decoded by hand, a few dozen lines each.
 *
 * What it does: holds the arm where it was at the first state of each
 * episode (clamped to the joint limits), answering every robot/joint_state
 * with a robot/joint_command; a joint goal on task/goal moves the hold toward
 * the goal at HOLD_SPEED rad/s. It is the same behaviour as scripted:hold for
 * a run without joint goals, which lets a test check it against Python.
 *
 * What any policy process must do to take part in a run, as this one does:
 *   - read the run's endpoints.json (--endpoints FILE, or $HIL_RUN_DIR/endpoints.json);
 *   - probe its ipc:// paths before binding (a live owner answers a connect: refuse);
 *   - bind the "policy" role's pub (PUB) and rep (REP) endpoints;
 *   - answer ping (PingReply), info (NodeInfo with role "policy") and shutdown (Ack, then exit 0)
 *     on the rep socket; anything else gets roarm.v1.Error "unknown_method";
 *   - publish node/heartbeat (Heartbeat) every 0.5 s on its pub socket;
 *   - subscribe to the robot's robot/joint_state and the runner's task/goal, and answer
 *     each state with a robot/joint_command whose obs_seq is the state's seq;
 *   - exit 0 on SIGTERM or SIGINT.
 *
 * Build: gcc -O2 -o c_hold c_hold.c -lzmq -lm   (Debian: apt-get install libzmq3-dev)
 * Run:   hil run scenarios/c_hold.yaml   (the scenario's policy.command starts it)
 */

#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define NJ 6
#define HOLD_SPEED 1.0          /* rad/s toward a joint goal */
#define HEARTBEAT_NS 500000000LL
#define SCHEMA_MAJOR 1
#define SCHEMA_MINOR 1

static const char *JOINTS[NJ] = {"base", "shoulder", "elbow", "wrist", "roll", "gripper"};
static const double LOWER[NJ] = {-M_PI, -M_PI / 2, -1.0, -M_PI / 2, -M_PI, 0.0};
static const double UPPER[NJ] = {M_PI, M_PI / 2, 2.95, M_PI / 2, M_PI, 1.5};
static const double MAX_VELOCITY[NJ] = {4.7, 4.7, 4.7, 4.7, 4.7, 4.7};

static volatile sig_atomic_t running = 1;
static void on_signal(int sig) { (void)sig; running = 0; }

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- a growable byte buffer ------------------------------------------------------------------ */
typedef struct { uint8_t data[4096]; size_t len; } Buf;

static void put(Buf *b, const void *p, size_t n) {
    if (b->len + n > sizeof b->data) { fprintf(stderr, "c_hold: message too large\n"); exit(1); }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
static void put_byte(Buf *b, uint8_t v) { put(b, &v, 1); }

/* ---- protobuf (proto3) writing --------------------------------------------------------------- */
static void pb_varint(Buf *b, uint64_t v) {
    while (v >= 0x80) { put_byte(b, (uint8_t)(v | 0x80)); v >>= 7; }
    put_byte(b, (uint8_t)v);
}
static void pb_key(Buf *b, int field, int wire) { pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wire); }
static void pb_uint(Buf *b, int field, uint64_t v) { if (v) { pb_key(b, field, 0); pb_varint(b, v); } }
static void pb_bool(Buf *b, int field, int v) { if (v) { pb_key(b, field, 0); pb_varint(b, 1); } }
static void pb_double(Buf *b, int field, double v) {
    if (v == 0.0 && !signbit(v)) return;
    pb_key(b, field, 1);
    put(b, &v, 8); /* little-endian hosts: protobuf's fixed64 byte order */
}
static void pb_string(Buf *b, int field, const char *s) {
    size_t n = strlen(s);
    if (!n) return;
    pb_key(b, field, 2); pb_varint(b, n); put(b, s, n);
}
static void pb_doubles(Buf *b, int field, const double *v, int n) { /* packed */
    pb_key(b, field, 2); pb_varint(b, (uint64_t)n * 8); put(b, v, (size_t)n * 8);
}
static void pb_message(Buf *b, int field, const Buf *inner) {
    pb_key(b, field, 2); pb_varint(b, inner->len); put(b, inner->data, inner->len);
}

/* ---- protobuf reading ------------------------------------------------------------------------ */
typedef struct { const uint8_t *p, *end; } Reader;

static int rd_varint(Reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t byte = *r->p++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) { *out = v; return 1; }
    }
    return 0;
}

/* One field: its number and wire type; a length-delimited value comes back as [*val, *val + *len). */
static int rd_field(Reader *r, int *field, int *wire, uint64_t *num, const uint8_t **val, size_t *len) {
    uint64_t key;
    if (r->p >= r->end || !rd_varint(r, &key)) return 0;
    *field = (int)(key >> 3); *wire = (int)(key & 7);
    switch (*wire) {
    case 0: return rd_varint(r, num);
    case 1: if (r->end - r->p < 8) return 0; *val = r->p; *len = 8; r->p += 8; return 1;
    case 5: if (r->end - r->p < 4) return 0; *val = r->p; *len = 4; r->p += 4; return 1;
    case 2: {
        uint64_t n;
        if (!rd_varint(r, &n) || (uint64_t)(r->end - r->p) < n) return 0;
        *val = r->p; *len = (size_t)n; r->p += n; return 1;
    }
    default: return 0;
    }
}

/* Repeated doubles, packed (wire 2) or one per field (wire 1); returns how many were read. */
static int rd_doubles(int wire, const uint8_t *val, size_t len, double *out, int have, int max) {
    if (wire == 1 && have < max) { memcpy(&out[have], val, 8); return have + 1; }
    if (wire != 2) return have;
    for (size_t i = 0; i + 8 <= len && have < max; i += 8) memcpy(&out[have++], val + i, 8);
    return have;
}

/* ---- msgpack header: {seq, src, type, sent_ns, v: [major, minor]} ---------------------------- */
static void mp_str(Buf *b, const char *s) {
    size_t n = strlen(s);
    if (n < 32) put_byte(b, (uint8_t)(0xa0 | n)); else { put_byte(b, 0xd9); put_byte(b, (uint8_t)n); }
    put(b, s, n);
}
static void mp_uint64(Buf *b, uint64_t v) { /* always uint 64: an integer to every msgpack reader */
    put_byte(b, 0xcf);
    for (int i = 7; i >= 0; i--) put_byte(b, (uint8_t)(v >> (8 * i)));
}
static void header(Buf *b, uint64_t seq, const char *src, const char *type) {
    put_byte(b, 0x85);
    mp_str(b, "seq"); mp_uint64(b, seq);
    mp_str(b, "src"); mp_str(b, src);
    mp_str(b, "type"); mp_str(b, type);
    mp_str(b, "sent_ns"); mp_uint64(b, (uint64_t)now_ns());
    mp_str(b, "v"); put_byte(b, 0x92); put_byte(b, SCHEMA_MAJOR); put_byte(b, SCHEMA_MINOR);
}

/* ---- the node ------------------------------------------------------------------------------------ */
typedef struct {
    const char *name;
    void *pub, *rep, *sub;
    uint64_t seq_command, seq_heartbeat, seq_reply;
    int64_t started_ns;
    uint64_t commands;
    int latched;            /* the hold is set for this episode */
    int answered;           /* a state was answered since start */
    uint64_t last_seq;
    double hold[NJ];
    double goal[NJ];        /* NaN: no joint goal for that joint */
    double dt;              /* seconds between the last two states' sim_time, for the goal speed */
    double last_sim_time;
} Node;

static void send3(void *socket, const char *topic, const Buf *head, const Buf *payload) {
    zmq_send(socket, topic, strlen(topic), ZMQ_SNDMORE);
    zmq_send(socket, head->data, head->len, ZMQ_SNDMORE);
    zmq_send(socket, payload->data, payload->len, 0);
}

static void publish(Node *n, const char *topic, const char *type, uint64_t *seq, const Buf *payload) {
    Buf head = {.len = 0};
    header(&head, (*seq)++, n->name, type);
    send3(n->pub, topic, &head, payload);
}

static void heartbeat(Node *n) {
    Buf hb = {.len = 0}, entry = {.len = 0};
    pb_uint(&hb, 1, (uint64_t)now_ns());
    pb_string(&hb, 2, n->name);
    pb_string(&hb, 3, "policy");
    pb_string(&hb, 4, "ok");
    pb_double(&hb, 5, (now_ns() - n->started_ns) / 1e9);
    pb_string(&hb, 6, "holding");
    pb_string(&entry, 1, "commands");   /* map<string, uint64> counters = 7: one entry */
    pb_uint(&entry, 2, n->commands);
    pb_message(&hb, 7, &entry);
    publish(n, "node/heartbeat", "roarm.v1.Heartbeat", &n->seq_heartbeat, &hb);
}

static double clamp(double v, int j) { return v < LOWER[j] ? LOWER[j] : v > UPPER[j] ? UPPER[j] : v; }

static void on_state(Node *n, const uint8_t *data, size_t len) {
    Reader r = {data, data + len};
    int field, wire, count = 0;
    uint64_t num = 0, seq = 0;
    const uint8_t *val = NULL;
    size_t vlen = 0;
    double position[NJ], sim_time = 0.0;
    while (rd_field(&r, &field, &wire, &num, &val, &vlen)) {
        if (field == 2 && wire == 0) seq = num;
        else if (field == 4) count = rd_doubles(wire, val, vlen, position, count, NJ);
        else if (field == 7 && wire == 1) memcpy(&sim_time, val, 8);
    }
    if (count != NJ) { fprintf(stderr, "c_hold: state %llu has %d positions, ignored\n", (unsigned long long)seq, count); return; }
    if (n->answered && (seq < n->last_seq || seq == 0)) { /* the robot was reset: a new episode */
        n->latched = 0;
        for (int j = 0; j < NJ; j++) n->goal[j] = NAN;
    }
    if (!n->latched) {
        for (int j = 0; j < NJ; j++) n->hold[j] = clamp(position[j], j);
        n->latched = 1;
    } else if (sim_time > n->last_sim_time) {
        double step = HOLD_SPEED * (sim_time - n->last_sim_time);
        for (int j = 0; j < NJ; j++) {
            if (isnan(n->goal[j])) continue;
            double d = clamp(n->goal[j], j) - n->hold[j];
            n->hold[j] += d > step ? step : d < -step ? -step : d;
        }
    }
    n->last_sim_time = sim_time;
    n->last_seq = seq;
    n->answered = 1;
    Buf cmd = {.len = 0};
    pb_uint(&cmd, 1, (uint64_t)now_ns());
    pb_uint(&cmd, 2, n->seq_command + 1);
    pb_uint(&cmd, 3, seq);
    pb_doubles(&cmd, 5, n->hold, NJ);
    publish(n, "robot/joint_command", "roarm.v1.JointCommand", &n->seq_command, &cmd);
    n->commands++;
}

static void on_goal(Node *n, const uint8_t *data, size_t len) {
    Reader r = {data, data + len};
    int field, wire;
    uint64_t num;
    const uint8_t *val = NULL;
    size_t vlen = 0;
    for (int j = 0; j < NJ; j++) n->goal[j] = NAN;
    while (rd_field(&r, &field, &wire, &num, &val, &vlen)) {
        if (field != 4 || wire != 2) continue;          /* Goal.joints (JointTarget); a tcp goal is not followed */
        Reader t = {val, val + vlen};
        char names[NJ][16];
        int n_names = 0, n_pos = 0;
        double pos[NJ];
        while (rd_field(&t, &field, &wire, &num, &val, &vlen)) {
            if (field == 1 && wire == 2 && n_names < NJ) {
                size_t k = vlen < 15 ? vlen : 15;
                memcpy(names[n_names], val, k); names[n_names++][k] = 0;
            } else if (field == 2) n_pos = rd_doubles(wire, val, vlen, pos, n_pos, NJ);
        }
        for (int i = 0; i < n_pos; i++) {
            int j = i;
            if (n_names) {
                j = -1;
                for (int k = 0; k < NJ; k++) if (i < n_names && !strcmp(names[i], JOINTS[k])) j = k;
            }
            if (j >= 0) n->goal[j] = pos[i];
        }
    }
}

static void reply(Node *n, const char *method, const char *type, const Buf *payload) {
    Buf head = {.len = 0};
    header(&head, n->seq_reply++, n->name, type);
    send3(n->rep, method, &head, payload);
}

static int on_request(Node *n) {
    char method[64] = {0};
    int more = 1, frames = 0, size;
    size_t more_size = sizeof more;
    char scratch[2048];
    while (more) {
        size = zmq_recv(n->rep, frames == 0 ? method : scratch, frames == 0 ? sizeof method - 1 : sizeof scratch, 0);
        if (size < 0) return 1;
        if (frames == 0 && size < (int)sizeof method) method[size] = 0;
        frames++;
        zmq_getsockopt(n->rep, ZMQ_RCVMORE, &more, &more_size);
    }
    Buf out = {.len = 0};
    if (frames != 3) {
        pb_string(&out, 1, "frame_count"); pb_string(&out, 2, "expected 3 frames");
        reply(n, method, "roarm.v1.Error", &out);
    } else if (!strcmp(method, "ping")) {
        pb_string(&out, 1, n->name); pb_string(&out, 2, "policy"); pb_string(&out, 3, "1.1");
        pb_double(&out, 4, (now_ns() - n->started_ns) / 1e9); pb_uint(&out, 5, (uint64_t)now_ns());
        reply(n, method, "roarm.v1.PingReply", &out);
    } else if (!strcmp(method, "info")) {
        Buf extra = {.len = 0};
        pb_string(&out, 1, n->name); pb_string(&out, 2, "policy"); pb_string(&out, 3, "c:hold");
        for (int j = 0; j < NJ; j++) pb_string(&out, 4, JOINTS[j]);
        pb_doubles(&out, 5, LOWER, NJ); pb_doubles(&out, 6, UPPER, NJ); pb_doubles(&out, 7, MAX_VELOCITY, NJ);
        /* dt 0: works at any control period */
        pb_string(&out, 9, "1.1");
        pb_string(&extra, 1, "language"); pb_string(&extra, 2, "C");   /* map<string, string> extra = 13 */
        pb_message(&out, 13, &extra);
        pb_uint(&out, 15, (uint64_t)getpid());
        reply(n, method, "roarm.v1.NodeInfo", &out);
    } else if (!strcmp(method, "shutdown")) {
        pb_bool(&out, 1, 1); pb_string(&out, 2, "shutting down");
        reply(n, method, "roarm.v1.Ack", &out);
        return 0;
    } else {
        pb_string(&out, 1, "unknown_method"); pb_string(&out, 2, "this node answers ping, info, shutdown");
        reply(n, method, "roarm.v1.Error", &out);
    }
    return 1;
}

/* ---- endpoints.json: {"policy": {"pub": "...", "rep": "..."}, "robot": {...}, ...} -------------- */
static int endpoint(const char *json, const char *role, const char *kind, char *out, size_t size) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\"", role);
    const char *p = strstr(json, key);
    if (!p || !(p = strchr(p, '{'))) return 0;
    const char *end = strchr(p, '}');
    snprintf(key, sizeof key, "\"%s\"", kind);
    const char *k = strstr(p, key);
    if (!k || k > end || !(k = strchr(k + strlen(key), '"'))) return 0;
    const char *stop = strchr(k + 1, '"');
    if (!stop || (size_t)(stop - k - 1) >= size) return 0;
    memcpy(out, k + 1, (size_t)(stop - k - 1));
    out[stop - k - 1] = 0;
    return 1;
}

/* A live process holding an ipc:// path answers a connect; libzmq would silently take it over. */
static int ipc_in_use(const char *endpoint_text) {
    if (strncmp(endpoint_text, "ipc://", 6)) return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, endpoint_text + 6, sizeof addr.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    int live = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (fd >= 0) close(fd);
    return live;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return text;
}

int main(int argc, char **argv) {
    char path[4096] = {0};
    Node n = {.name = "c_hold"};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--endpoints") && i + 1 < argc) snprintf(path, sizeof path, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--name") && i + 1 < argc) n.name = argv[++i];
        else { fprintf(stderr, "usage: %s [--endpoints FILE] [--name NAME]\n", argv[0]); return 2; }
    }
    if (!path[0]) {
        const char *run_dir = getenv("HIL_RUN_DIR");
        if (!run_dir) { fprintf(stderr, "c_hold: give --endpoints FILE or set HIL_RUN_DIR\n"); return 2; }
        snprintf(path, sizeof path, "%s/endpoints.json", run_dir);
    }
    const char *json = read_file(path);
    char pub[512], rep[512], robot[512], runner[512];
    if (!json || !endpoint(json, "policy", "pub", pub, sizeof pub) || !endpoint(json, "policy", "rep", rep, sizeof rep)
        || !endpoint(json, "robot", "pub", robot, sizeof robot) || !endpoint(json, "runner", "pub", runner, sizeof runner)) {
        fprintf(stderr, "c_hold: cannot read the policy, robot and runner endpoints from %s\n", path);
        return 2;
    }
    if (strstr(json, "\"keys\"")) { fprintf(stderr, "c_hold: this run uses CURVE keys, which this example does not\n"); return 2; }
    if (ipc_in_use(pub) || ipc_in_use(rep)) { fprintf(stderr, "c_hold: %s is held by a live process\n", pub); return 2; }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    n.started_ns = now_ns();
    for (int j = 0; j < NJ; j++) n.goal[j] = NAN;

    void *ctx = zmq_ctx_new();
    n.pub = zmq_socket(ctx, ZMQ_PUB);
    n.rep = zmq_socket(ctx, ZMQ_REP);
    n.sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(n.pub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(n.rep, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(n.sub, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(n.pub, pub) || zmq_bind(n.rep, rep)) {
        fprintf(stderr, "c_hold: cannot bind %s / %s: %s\n", pub, rep, zmq_strerror(errno));
        return 2;
    }
    zmq_setsockopt(n.sub, ZMQ_SUBSCRIBE, "robot/joint_state", strlen("robot/joint_state"));
    zmq_setsockopt(n.sub, ZMQ_SUBSCRIBE, "task/goal", strlen("task/goal"));
    zmq_connect(n.sub, robot);
    zmq_connect(n.sub, runner);
    printf("ready: role policy, answers ping at %s, publishes on %s (pid %d)\n", rep, pub, (int)getpid());
    fflush(stdout);

    int64_t next_heartbeat = 0;
    while (running) {
        zmq_pollitem_t items[] = {{n.sub, 0, ZMQ_POLLIN, 0}, {n.rep, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, 50) < 0) { if (errno == EINTR) continue; break; }
        if (items[1].revents & ZMQ_POLLIN && !on_request(&n)) running = 0;
        while (items[0].revents & ZMQ_POLLIN) {
            char topic[64];
            uint8_t head[512], payload[4096];
            int t = zmq_recv(n.sub, topic, sizeof topic - 1, ZMQ_DONTWAIT);
            if (t < 0) break;
            topic[t < (int)sizeof topic ? t : (int)sizeof topic - 1] = 0;
            int more = 0, frames = 1, size = 0;
            size_t more_size = sizeof more;
            zmq_getsockopt(n.sub, ZMQ_RCVMORE, &more, &more_size);
            while (more) {   /* header, payload; a message of another shape is dropped */
                size = zmq_recv(n.sub, frames == 1 ? (void *)head : (void *)payload, frames == 1 ? sizeof head : sizeof payload, 0);
                frames++;
                zmq_getsockopt(n.sub, ZMQ_RCVMORE, &more, &more_size);
            }
            if (frames != 3 || size < 0 || size > (int)sizeof payload) continue;
            if (!strcmp(topic, "robot/joint_state")) on_state(&n, payload, (size_t)size);
            else if (!strcmp(topic, "task/goal")) on_goal(&n, payload, (size_t)size);
        }
        if (now_ns() >= next_heartbeat) { heartbeat(&n); next_heartbeat = now_ns() + HEARTBEAT_NS; }
    }
    zmq_close(n.sub);
    zmq_close(n.rep);
    zmq_close(n.pub);
    zmq_ctx_term(ctx);
    return 0;
}

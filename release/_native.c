/* The per-file read loop of the hashing engine, in C.
 *
 * Python's cost per file (open, fstat, read, close, hasher objects, hexdigest: ~10 us) is what kept
 * the manifest build and verify of small-file trees far from the hash limit. This module reads a
 * whole batch of files with the GIL released, so worker *threads* share the process (no pickling)
 * and both cores hash. It replaced a Python loop (hashlib/xxhash per file, a piece sink per group)
 * and uses the same hash implementations (OpenSSL's SHA-256/MD5/SHA-1, xxHash's XXH3-128); the tests
 * check every digest and piece against hashlib and xxhash.
 *
 * Files smaller than RING_SLOT_SIZE that are hashed go through the thread's io_uring ring where the kernel
 * has one (release/_ring.c): 979k tiny files, the loop alone took 2.0-2.2 s against 2.3-2.5 s with three
 * system calls a file. Any file the ring did not read whole and of its size is read again the plain way,
 * which also says why; the results are the same either way (use_ring(False) turns the ring off).
 *
 * read_group(root, paths, sizes, starts, flags, algos, piece_start, piece_end, piece_length, mtimes=None, spans=None)
 *   root          folder the relative paths are opened in (openat, never following a final symlink)
 *   paths         sequence of bytes, relative paths; with `spans`, one buffer (a FileTable's path blob)
 *   spans         bytes of int64 (start, end) pairs or None: file i's path is paths[start:end]
 *   sizes         bytes of int64, the expected size of every file
 *   starts        bytes of int64 or None: offset in each file where its stream bytes start
 *                 (a file whose start equals its size feeds no piece); None: 0 for every file
 *   flags         bytes, one per file: 1 = compute the file hashes of `algos`; 2 = only check that
 *                 the file is regular and of its size (lstat, never opened: verify --fast)
 *   algos         bit mask: 1 xxh3_128, 2 sha256, 4 md5 (digests packed in that order)
 *   piece_*       the group's stream span [piece_start, piece_end) and piece length (0: no pieces)
 *   mtimes        bytes of int64 or None: with all three algos, write each hashed file's manifest record
 *                 line (manifest.io.record_line's canonical form, byte for byte) into `lines`
 * returns (digests, codes, values, head, pieces, tail, nbytes, lines, line_ends)
 *   digests       per file, the selected raw digests (zeros when not hashed or failed)
 *   codes         bytes, one per file: see the CODE_* values below; values: int64 detail per file
 *   head/tail     stream bytes before the first / after the last piece boundary of the span
 *   pieces        SHA-1 of every piece wholly inside the span
 *   nbytes        bytes read
 *   lines         the record lines of the files with flag 1 (none for a file that failed: its code says
 *                 why); line_ends: int64 end offset in `lines` of each flag-1 file's line ("" without mtimes)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_SIZE (1 << 20)
#define FLAG_HASH 1
#define FLAG_STAT 2

enum {
    CODE_OK = 0,
    CODE_OPEN = 1,        /* value: errno of open */
    CODE_NOT_REGULAR = 2, /* value: st_mode */
    CODE_SIZE = 3,        /* value: the size found */
    CODE_SHORT = 4,       /* value: bytes read before the end came early */
    CODE_READ = 5,        /* value: errno of fstat/read */
};

#include "_buf.h"
#include "_digests.h"
#include "_ring.h"

static const char *bytes_or_empty(const Buf *b) { return b->data ? (const char *)b->data : ""; }

typedef struct {
    int rootfd;
    /* the folder of the last file opened, kept open: a file is opened by its name in it, so the kernel
     * looks up one path component instead of every one (perf: the dentry hash walk was 18% of a
     * million-file build's CPU). Files come folder by folder, so it changes rarely. */
    int dirfd; /* -1: none open; -2: `dir` could not be opened, dir_errno says why */
    int dir_errno;
    char dir[PATH_MAX];
    Py_ssize_t count;
    const char **paths;
    const int64_t *sizes;
    const int64_t *starts; /* NULL: all 0 */
    const unsigned char *flags;
    Hashers hashers;
    Sink sink;
    int pieces; /* 0: no sink */
    unsigned char *buffer;
    unsigned char *digests;
    unsigned char *codes;
    int64_t *values;
    int64_t nbytes;
    int oom;
    const int64_t *mtimes; /* NULL: no record lines */
    Buf lines, line_ends;
} Job;

/* Read one file once: file hashes when asked, and its stream bytes from `start` into the sink. */
/* Records why file i is not the regular file of its expected size; 0 when it is. */
/* The folder to open file i in, and its name there; NULL (errno set) when the folder cannot be opened. */
static const char *locate(Job *job, Py_ssize_t i, int *at) {
    const char *path = job->paths[i], *slash = strrchr(path, '/');
    if (!slash) {
        *at = job->rootfd;
        return path;
    }
    size_t len = (size_t)(slash - path);
    if (len >= sizeof job->dir) { /* no folder name is this long: let the kernel say so */
        *at = job->rootfd;
        return path;
    }
    if (job->dirfd == -1 || strncmp(job->dir, path, len) != 0 || job->dir[len] != 0) {
        if (job->dirfd >= 0) close(job->dirfd);
        memcpy(job->dir, path, len);
        job->dir[len] = 0;
        job->dirfd = openat(job->rootfd, job->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (job->dirfd < 0) {
            job->dir_errno = errno;
            job->dirfd = -2;
        }
    }
    if (job->dirfd == -2) {
        errno = job->dir_errno;
        return NULL;
    }
    *at = job->dirfd;
    return slash + 1;
}

static int wrong_file(Job *job, Py_ssize_t i, const struct stat *st) {
    if (!S_ISREG(st->st_mode)) {
        job->codes[i] = CODE_NOT_REGULAR;
        job->values[i] = st->st_mode;
        return 1;
    }
    if (st->st_size != job->sizes[i]) {
        job->codes[i] = CODE_SIZE;
        job->values[i] = st->st_size;
        return 1;
    }
    return 0;
}

/* The checks read_one makes after opening, from an lstat alone. */
static void stat_one(Job *job, Py_ssize_t i) {
    struct stat st;
    int at;
    const char *name = locate(job, i, &at);
    if (!name || fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        job->codes[i] = CODE_OPEN;
        job->values[i] = errno;
    } else {
        wrong_file(job, i, &st);
    }
}

/* Why file i, open as `fd`, did not read as a regular file of its expected size: its fstat decides (a
 * special file or a size that differs), else `code` and `value` stand. Only called when something is off. */
static void anomaly(Job *job, Py_ssize_t i, int fd, int code, int64_t value) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
        job->codes[i] = CODE_READ;
        job->values[i] = errno;
    } else if (!wrong_file(job, i, &st)) {
        job->codes[i] = (unsigned char)code;
        job->values[i] = value;
    }
}

/* Read one file once: file hashes when asked, and its stream bytes from `start` into the sink. There is no
 * fstat first: each read asks for one byte more than the file should still hold, so a short read proves the
 * end came where expected, and only a file that reads wrong (an error, too few or too many bytes) is
 * fstat'ed to say why (and every empty one: a FIFO or a device reads empty too). That is one system call
 * fewer per file (a million of them in a tiny-file tree). */
static void read_one(Job *job, Py_ssize_t i) {
    int64_t size = job->sizes[i];
    int64_t start = job->starts ? job->starts[i] : 0;
    if (job->flags[i] == FLAG_STAT) {
        stat_one(job, i);
        return;
    }
    int hash = job->flags[i] == FLAG_HASH;
    int feed = job->pieces && start < size;
    if (!hash && !feed) return;
    int at;
    const char *name = locate(job, i, &at);
    int fd = name ? openat(at, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
    if (fd < 0) {
        job->codes[i] = CODE_OPEN;
        job->values[i] = errno;
        return;
    }
    int64_t pos = hash ? 0 : start;
    if (pos && lseek(fd, pos, SEEK_SET) < 0) {
        anomaly(job, i, fd, CODE_READ, errno);
        close(fd);
        return;
    }
    if (hash) hashers_start(&job->hashers);
    for (int end = 0; !end;) {
        size_t want = size - pos < READ_SIZE ? (size_t)(size - pos) + 1 : READ_SIZE;
        ssize_t got = read(fd, job->buffer, want);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            anomaly(job, i, fd, CODE_READ, errno);
            break;
        }
        if (pos + got > size) { /* it grew since it was listed */
            anomaly(job, i, fd, CODE_SIZE, pos + got);
            break;
        }
        end = (size_t)got < want; /* a short read of a regular file: its end */
        if (end && pos + got < size) {
            anomaly(job, i, fd, CODE_SHORT, pos + got);
            break;
        }
        if (hash) hashers_update(&job->hashers, job->buffer, (size_t)got);
        if (feed && pos + got > start) {
            int64_t skip = start > pos ? start - pos : 0;
            if (sink_feed(&job->sink, job->buffer + skip, (size_t)(got - skip))) job->oom = 1;
        }
        pos += got;
        job->nbytes += got;
    }
    /* an empty read proves nothing about what the entry is: a FIFO or a device reads empty too */
    if (size == 0 && job->codes[i] == CODE_OK) anomaly(job, i, fd, CODE_OK, 0);
    if (hash && job->codes[i] == CODE_OK)
        hashers_finish(&job->hashers, job->digests + i * digest_width(job->hashers.algos));
    close(fd);
}

/* `path` as json.dumps(ensure_ascii=False) quotes it: '"', '\\' and control characters escaped. */
static int add_json_string(Buf *b, const char *path) {
    static const char hexdigits[] = "0123456789abcdef";
    int failed = buf_add(b, (const unsigned char *)"\"", 1);
    for (const unsigned char *p = (const unsigned char *)path; *p && !failed; p++) {
        unsigned char c = *p;
        const char *escape = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                           : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (escape) {
            failed = buf_add(b, (const unsigned char *)escape, 2);
        } else if (c < 0x20) {
            unsigned char u[6] = {'\\', 'u', '0', '0', (unsigned char)hexdigits[c >> 4], (unsigned char)hexdigits[c & 15]};
            failed = buf_add(b, u, 6);
        } else {
            failed = buf_add(b, p, 1);
        }
    }
    return failed || buf_add(b, (const unsigned char *)"\"", 1);
}

/* File i's manifest record line (its digests are at `digest`, xxh3-128 then sha256 then md5). */
static int add_record_line(Job *job, Py_ssize_t i, const unsigned char *digest) {
    static const char hexdigits[] = "0123456789abcdef";
    static const char *fields[] = {",\"xxh3_128\":\"", "\",\"sha256\":\"", "\",\"md5\":\""};
    static const int widths[] = {16, 32, 16};
    char numbers[96];
    Buf *b = &job->lines;
    int n = snprintf(numbers, sizeof numbers, ",\"size\":%lld,\"mtime_ns\":%lld", (long long)job->sizes[i],
                     (long long)job->mtimes[i]);
    int failed = buf_add(b, (const unsigned char *)"{\"path\":", 8) || add_json_string(b, job->paths[i]) ||
                 buf_add(b, (const unsigned char *)numbers, (size_t)n);
    for (int f = 0; f < 3 && !failed; f++) {
        char hex[64];
        for (int k = 0; k < widths[f]; k++) {
            hex[2 * k] = hexdigits[digest[k] >> 4];
            hex[2 * k + 1] = hexdigits[digest[k] & 15];
        }
        digest += widths[f];
        failed = buf_add(b, (const unsigned char *)fields[f], strlen(fields[f])) ||
                 buf_add(b, (const unsigned char *)hex, 2 * (size_t)widths[f]);
    }
    return failed || buf_add(b, (const unsigned char *)"\"}\n", 3);
}

/* After file i was read: its line (flag-1 files, when lines are asked for) and where it ends. */
static void record(Job *job, Py_ssize_t i) {
    if (!job->mtimes || job->flags[i] != FLAG_HASH) return;
    if (job->codes[i] == CODE_OK && add_record_line(job, i, job->digests + i * digest_width(job->hashers.algos)))
        job->oom = 1;
    int64_t end = (int64_t)job->lines.len;
    if (buf_add(&job->line_ends, (const unsigned char *)&end, sizeof end)) job->oom = 1;
}

/* Whether opening file i leaves the folder descriptor as it is (chains in flight may still be opening in it). */
static int keeps_folder(const Job *job, Py_ssize_t i) {
    const char *path = job->paths[i], *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;
    if (!slash || len >= sizeof job->dir) return 1; /* opened from the root */
    return job->dirfd >= 0 && strncmp(job->dir, path, len) == 0 && job->dir[len] == 0;
}

/* read_one's work for a file the ring read whole and of its size: hashes, stream bytes, count. */
static void take(Job *job, Py_ssize_t i, const unsigned char *data) {
    int64_t size = job->sizes[i], start = job->starts ? job->starts[i] : 0;
    hashers_start(&job->hashers);
    hashers_update(&job->hashers, data, (size_t)size);
    hashers_finish(&job->hashers, job->digests + i * digest_width(job->hashers.algos));
    if (job->pieces && start < size && sink_feed(&job->sink, data + start, (size_t)(size - start))) job->oom = 1;
    job->nbytes += size;
}

/* files and bytes taken from a ring, all threads: the tests see that the ring was used, and the cut counts the
 * bytes it read (/proc/self/io's rchar counts read calls, not io_uring's reads) */
static int64_t ring_files, ring_bytes;

/* Waits until a chain of the window [head, head + RING_SLOTS) ends, marks its slot done and whether it read its
 * file whole and of its size; returns the slot, or -1 when the ring failed (no chain in flight to be trusted). */
static int reap(const Job *job, Py_ssize_t head, int *done, int *ok) {
    int s, opened, got;
    if (ring_wait(&s, &opened, &got) != 0) return -1;
    Py_ssize_t file = head + (s - head % RING_SLOTS + RING_SLOTS) % RING_SLOTS;
    done[s] = 1;
    ok[s] = opened >= 0 && got == job->sizes[file];
    return s;
}

/* Reads and records every file of the job, in order. Small hashed files of one folder go through this thread's
 * io_uring ring, RING_SLOTS in flight, and are taken in file order; the rest, and any file whose chain did not
 * read exactly its size, go through read_one, which also words what is wrong. */
static void read_all(Job *job) {
    /* missed: a chain did not read its file, nearly always because the name or the data was not in the
     * kernel's caches (a cold tree). The rest of the job then goes the plain way, which waits on the disk
     * on this thread: trying the ring first cost cold verify ~10% more time. The next job tries again. */
    int ring = ring_ready(), missed = 0, ok[RING_SLOTS] = {0}, done[RING_SLOTS] = {0};
    Py_ssize_t head = 0, next = 0, taken = 0;
    int64_t taken_bytes = 0;
    while (head < job->count && !job->oom) {
        /* topped up when half the window is free, so each system call submits several chains */
        int refill = next - head <= RING_SLOTS / 2 && !missed;
        for (int at; ring && refill && next < job->count && next - head < RING_SLOTS; next++) {
            int64_t size = job->sizes[next];
            if (job->flags[next] != FLAG_HASH || size <= 0 || size >= RING_SLOT_SIZE) break;
            if (next > head && !keeps_folder(job, next)) break;
            const char *name = locate(job, next, &at);
            if (!name) break;
            done[next % RING_SLOTS] = 0;
            ring_queue((int)(next % RING_SLOTS), at, name, (unsigned)size + 1);
        }
        int slot = (int)(head % RING_SLOTS);
        while (next > head && !done[slot]) {
            int s = reap(job, head, done, ok);
            if (s < 0) { /* the ring failed: what was in flight is read again */
                ring = 0;
                next = head;
                break;
            }
            missed |= !ok[s];
        }
        if (next > head && ok[slot]) {
            take(job, head, ring_buffer(slot));
            taken++;
            taken_bytes += job->sizes[head];
        } else {
            read_one(job, head);
        }
        record(job, head);
        if (next == head) next++;
        head++;
    }
    /* out of memory midway: the chains still in flight end before the ring serves another job */
    for (; ring && head < next; head++)
        while (ring && !done[head % RING_SLOTS]) ring = reap(job, head, done, ok) >= 0;
    __atomic_fetch_add(&ring_files, (int64_t)taken, __ATOMIC_RELAXED);
    __atomic_fetch_add(&ring_bytes, taken_bytes, __ATOMIC_RELAXED);
}

static int int64_view(PyObject *obj, Py_buffer *view, Py_ssize_t count, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) != 0) return -1;
    if (view->len != count * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd int64", name, view->len, count);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Copy the `count` paths that `spans` cut from `blob` into `copy`, each NUL-ended, and point `out` at them. */
static int split_paths(const Py_buffer *blob, const Py_buffer *spans, Py_ssize_t count, Buf *copy, const char **out) {
    const int64_t *span = spans->buf;
    if (spans->len != count * 16) {
        PyErr_Format(PyExc_ValueError, "spans: %zd bytes, expected %zd", spans->len, count * 16);
        return -1;
    }
    size_t *at = PyMem_Calloc(count ? count : 1, sizeof(size_t));
    if (!at) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t start = span[2 * i], end = span[2 * i + 1];
        if (start < 0 || end < start || end > blob->len) {
            PyMem_Free(at);
            PyErr_SetString(PyExc_ValueError, "spans: (start, end) inside the paths buffer expected");
            return -1;
        }
        at[i] = copy->len;
        if (buf_add(copy, (const unsigned char *)blob->buf + start, (size_t)(end - start)) ||
            buf_add(copy, (const unsigned char *)"", 1)) {
            PyMem_Free(at);
            PyErr_NoMemory();
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) out[i] = (const char *)copy->data + at[i];
    PyMem_Free(at);
    return 0;
}

static PyObject *read_group(PyObject *self, PyObject *args) {
    PyObject *root, *paths_arg, *paths = NULL, *sizes_obj, *starts_obj, *flags_obj, *mtimes_obj = Py_None;
    PyObject *spans_obj = Py_None;
    int algos;
    long long piece_start, piece_end, piece_length;
    if (!PyArg_ParseTuple(args, "O&OOOOiLLL|OO", PyUnicode_FSConverter, &root, &paths_arg, &sizes_obj, &starts_obj,
                          &flags_obj, &algos, &piece_start, &piece_end, &piece_length, &mtimes_obj, &spans_obj))
        return NULL;
    Py_buffer sizes = {0}, starts = {0}, flags = {0}, mtimes = {0}, blob = {0}, spans = {0};
    Buf copy = {0};
    PyObject *result = NULL, *digests = NULL, *codes = NULL, *values = NULL;
    Job job;
    memset(&job, 0, sizeof job);
    /* our own references: the items outlive the GIL-free loop */
    int spanned = spans_obj != Py_None;
    paths = spanned ? Py_NewRef(paths_arg) : PySequence_Tuple(paths_arg);
    if (!paths) {
        Py_DECREF(root);
        return NULL;
    }
    Py_ssize_t count = spanned ? PyObject_Length(sizes_obj) / 8 : PyTuple_GET_SIZE(paths);
    if (count < 0) goto done;
    job.rootfd = -1;
    job.dirfd = -1;
    job.hashers.algos = algos & (ALGO_XXH3 | ALGO_SHA256 | ALGO_MD5);
    job.paths = PyMem_Calloc(count ? count : 1, sizeof(char *));
    if (!job.paths) {
        PyErr_NoMemory();
        goto done;
    }
    if (int64_view(sizes_obj, &sizes, count, "sizes") != 0) goto done;
    if (starts_obj != Py_None && int64_view(starts_obj, &starts, count, "starts") != 0) goto done;
    if (PyObject_GetBuffer(flags_obj, &flags, PyBUF_SIMPLE) != 0) goto done;
    if (flags.len != count) {
        PyErr_SetString(PyExc_ValueError, "flags: one byte per path expected");
        goto done;
    }
    if (spanned && (PyObject_GetBuffer(paths, &blob, PyBUF_SIMPLE) || PyObject_GetBuffer(spans_obj, &spans, PyBUF_SIMPLE) ||
                    split_paths(&blob, &spans, count, &copy, job.paths)))
        goto done;
    for (Py_ssize_t i = 0; !spanned && i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(paths, i);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "paths must be bytes");
            goto done;
        }
        job.paths[i] = PyBytes_AS_STRING(item);
    }
    if (mtimes_obj != Py_None) {
        if (job.hashers.algos != (ALGO_XXH3 | ALGO_SHA256 | ALGO_MD5)) {
            PyErr_SetString(PyExc_ValueError, "record lines need all three file hashes");
            goto done;
        }
        if (int64_view(mtimes_obj, &mtimes, count, "mtimes") != 0) goto done;
        job.mtimes = mtimes.buf;
    }
    size_t width = digest_width(job.hashers.algos);
    digests = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)width);
    codes = PyBytes_FromStringAndSize(NULL, count);
    values = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    job.buffer = PyMem_RawMalloc(READ_SIZE);
    job.hashers.xxh = XXH3_createState();
    if (!digests || !codes || !values || !job.buffer || !job.hashers.xxh) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    job.count = count;
    job.sizes = sizes.buf;
    job.starts = starts_obj != Py_None ? starts.buf : NULL;
    job.flags = flags.buf;
    job.digests = (unsigned char *)PyBytes_AS_STRING(digests);
    job.codes = (unsigned char *)PyBytes_AS_STRING(codes);
    job.values = (int64_t *)PyBytes_AS_STRING(values);
    memset(job.digests, 0, count * width);
    memset(job.codes, 0, count);
    memset(job.values, 0, count * sizeof(int64_t));
    job.pieces = piece_length > 0;
    if (job.pieces) sink_init(&job.sink, piece_start, piece_end, piece_length);

    /* paths, sizes, starts and flags stay alive: this call holds references to (or buffers of) all of them */
    int open_errno = 0;
    Py_BEGIN_ALLOW_THREADS
    job.rootfd = open(PyBytes_AS_STRING(root), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (job.rootfd < 0) {
        open_errno = errno;
    } else {
        read_all(&job);
        if (job.dirfd >= 0) close(job.dirfd);
        close(job.rootfd);
    }
    Py_END_ALLOW_THREADS

    if (open_errno) {
        errno = open_errno;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, root);
        goto done;
    }
    if (job.oom) {
        PyErr_NoMemory();
        goto done;
    }
    /* y# gives None for a NULL pointer: an empty buffer must still come back as b"" */
    result = Py_BuildValue("OOOy#y#y#Ly#y#", digests, codes, values, bytes_or_empty(&job.sink.head),
                           (Py_ssize_t)job.sink.head.len, bytes_or_empty(&job.sink.pieces),
                           (Py_ssize_t)job.sink.pieces.len, bytes_or_empty(&job.sink.tail),
                           (Py_ssize_t)job.sink.tail.len, (long long)job.nbytes, bytes_or_empty(&job.lines),
                           (Py_ssize_t)job.lines.len, bytes_or_empty(&job.line_ends), (Py_ssize_t)job.line_ends.len);

done:
    if (job.pieces) sink_free(&job.sink);
    if (job.hashers.xxh) XXH3_freeState(job.hashers.xxh);
    PyMem_RawFree(job.buffer);
    PyMem_Free(job.paths);
    if (sizes.obj) PyBuffer_Release(&sizes);
    if (starts.obj) PyBuffer_Release(&starts);
    if (flags.obj) PyBuffer_Release(&flags);
    if (mtimes.obj) PyBuffer_Release(&mtimes);
    if (blob.obj) PyBuffer_Release(&blob);
    if (spans.obj) PyBuffer_Release(&spans);
    free(copy.data);
    free(job.lines.data);
    free(job.line_ends.data);
    Py_XDECREF(digests);
    Py_XDECREF(codes);
    Py_XDECREF(values);
    Py_DECREF(paths);
    Py_DECREF(root);
    return result;
}

/* use_ring(on): whether small files may be read through io_uring (on by default; the tests compare both). */
static PyObject *use_ring(PyObject *self, PyObject *arg) {
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    ring_enable(on);
    Py_RETURN_NONE;
}

/* ring_files(), ring_bytes(): how many files, and their bytes, were read through a ring so far, by all threads. */
static PyObject *ring_files_read(PyObject *self, PyObject *unused) {
    return PyLong_FromLongLong((long long)__atomic_load_n(&ring_files, __ATOMIC_RELAXED));
}

static PyObject *ring_bytes_read(PyObject *self, PyObject *unused) {
    return PyLong_FromLongLong((long long)__atomic_load_n(&ring_bytes, __ATOMIC_RELAXED));
}

/* has_ring(): whether this thread reads small files through io_uring (its ring is made now if need be). */
static PyObject *has_ring(PyObject *self, PyObject *unused) { return PyBool_FromLong(ring_ready()); }

static PyMethodDef methods[] = {
    {"read_group", read_group, METH_VARARGS, "Read a batch of files once, GIL released: file and piece hashes."},
    {"use_ring", use_ring, METH_O, "Allow io_uring reads of small files, or not."},
    {"has_ring", has_ring, METH_NOARGS, "Whether this thread reads small files through io_uring."},
    {"ring_files", ring_files_read, METH_NOARGS, "Files read through io_uring so far, by all threads."},
    {"ring_bytes", ring_bytes_read, METH_NOARGS, "Bytes of the files read through io_uring so far, by all threads."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "release._native", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__native(void) {
    /* One malloc arena for the whole process. glibc gives each thread an arena of its own (up to 8 a core),
     * and each keeps the high-water mark of what its thread allocated: with 16 reading threads, ~15 arenas of
     * 2-11 MB were resident in a million-file manifest build (peak RSS 200-206 MB against the 200 MB of issue
     * 14; 182-185 MB with one arena, verify 172-178 -> 159-167 MB). The threads allocate a few times a batch,
     * so sharing the arena's lock measured no slower. Set here, before any reading thread allocates. */
    mallopt(M_ARENA_MAX, 1);
    PyObject *m = PyModule_Create(&module);
    /* files of this size or more are read with plain system calls (the tests read both sides of it) */
    if (m && PyModule_AddIntConstant(m, "RING_SLOT_SIZE", RING_SLOT_SIZE) != 0) Py_CLEAR(m);
    return m;
}

/* The per-file read loop of the hashing engine, in C.
 *
 * Python's cost per file (open, fstat, read, close, hasher objects, hexdigest: ~10 us) is what kept
 * the manifest build and verify of small-file trees far from the hash limit. This module reads a
 * whole batch of files with the GIL released, so worker *threads* share the process (no pickling)
 * and both cores hash. It replaced a Python loop (hashlib/xxhash per file, a piece sink per group)
 * and uses the same hash implementations (OpenSSL's SHA-256/MD5/SHA-1, xxHash's XXH3-128); the tests
 * check every digest and piece against hashlib and xxhash.
 *
 * read_group(root, paths, sizes, starts, flags, algos, piece_start, piece_end, piece_length)
 *   root          folder the relative paths are opened in (openat, never following a final symlink)
 *   paths         sequence of bytes, relative paths
 *   sizes         bytes of int64, the expected size of every file
 *   starts        bytes of int64 or None: offset in each file where its stream bytes start
 *                 (a file whose start equals its size feeds no piece); None: 0 for every file
 *   flags         bytes, one per file: 1 = compute the file hashes of `algos`; 2 = only check that
 *                 the file is regular and of its size (lstat, never opened: verify --fast)
 *   algos         bit mask: 1 xxh3_128, 2 sha256, 4 md5 (digests packed in that order)
 *   piece_*       the group's stream span [piece_start, piece_end) and piece length (0: no pieces)
 * returns (digests, codes, values, head, pieces, tail, nbytes)
 *   digests       per file, the selected raw digests (zeros when not hashed or failed)
 *   codes         bytes, one per file: see the CODE_* values below; values: int64 detail per file
 *   head/tail     stream bytes before the first / after the last piece boundary of the span
 *   pieces        SHA-1 of every piece wholly inside the span
 *   nbytes        bytes read
 *
 * count_entries(root): the non-directory entries under root (verify's test for EXTRA files).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OPENSSL_SUPPRESS_DEPRECATED /* the one-shot SHA256_/MD5_ contexts live on the stack */
#include <openssl/md5.h>
#include <openssl/sha.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define READ_SIZE (1 << 20)
#define ALGO_XXH3 1
#define ALGO_SHA256 2
#define ALGO_MD5 4
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

typedef struct {
    unsigned char *data;
    size_t len, cap;
} Buf;

static int buf_add(Buf *b, const unsigned char *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Cuts the span's stream bytes into head, whole pieces (hashed) and tail; readpass.Stitcher joins
 * the heads and tails of neighbouring groups into the boundary pieces. */
typedef struct {
    int64_t pos, first, last, length;
    int bounded, open;
    SHA_CTX piece;
    Buf head, pieces, tail;
} Sink;

static void sink_init(Sink *s, int64_t start, int64_t end, int64_t length) {
    memset(s, 0, sizeof *s);
    s->pos = start;
    s->length = length;
    s->first = (start + length - 1) / length * length;
    s->last = end / length * length;
    s->bounded = s->first <= end;
}

static int sink_feed(Sink *s, const unsigned char *data, size_t len) {
    while (len) {
        size_t n;
        if (!s->bounded || s->pos < s->first) {
            n = s->bounded && (int64_t)len > s->first - s->pos ? (size_t)(s->first - s->pos) : len;
            if (buf_add(&s->head, data, n)) return -1;
        } else if (s->pos < s->last) {
            int64_t left = s->length - (s->pos - s->first) % s->length;
            n = (int64_t)len < left ? len : (size_t)left;
            if (!s->open) {
                SHA1_Init(&s->piece);
                s->open = 1;
            }
            SHA1_Update(&s->piece, data, n);
            if ((s->pos + (int64_t)n - s->first) % s->length == 0) {
                unsigned char digest[SHA_DIGEST_LENGTH];
                SHA1_Final(digest, &s->piece);
                s->open = 0;
                if (buf_add(&s->pieces, digest, sizeof digest)) return -1;
            }
        } else {
            n = len;
            if (buf_add(&s->tail, data, n)) return -1;
        }
        s->pos += (int64_t)n;
        data += n;
        len -= n;
    }
    return 0;
}

static const char *bytes_or_empty(const Buf *b) { return b->data ? (const char *)b->data : ""; }

static void sink_free(Sink *s) {
    free(s->head.data);
    free(s->pieces.data);
    free(s->tail.data);
}

typedef struct {
    int algos;
    XXH3_state_t *xxh;
    SHA256_CTX sha;
    MD5_CTX md5;
} Hashers;

static size_t digest_width(int algos) {
    return (algos & ALGO_XXH3 ? 16 : 0) + (algos & ALGO_SHA256 ? 32 : 0) + (algos & ALGO_MD5 ? 16 : 0);
}

static void hashers_start(Hashers *h) {
    if (h->algos & ALGO_XXH3) XXH3_128bits_reset(h->xxh);
    if (h->algos & ALGO_SHA256) SHA256_Init(&h->sha);
    if (h->algos & ALGO_MD5) MD5_Init(&h->md5);
}

static void hashers_update(Hashers *h, const unsigned char *p, size_t n) {
    if (h->algos & ALGO_XXH3) XXH3_128bits_update(h->xxh, p, n);
    if (h->algos & ALGO_SHA256) SHA256_Update(&h->sha, p, n);
    if (h->algos & ALGO_MD5) MD5_Update(&h->md5, p, n);
}

static void hashers_finish(Hashers *h, unsigned char *out) {
    if (h->algos & ALGO_XXH3) {
        XXH128_canonical_t canon;
        XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(h->xxh));
        memcpy(out, canon.digest, 16);
        out += 16;
    }
    if (h->algos & ALGO_SHA256) {
        SHA256_Final(out, &h->sha);
        out += 32;
    }
    if (h->algos & ALGO_MD5) MD5_Final(out, &h->md5);
}

typedef struct {
    int rootfd;
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
} Job;

/* Read one file once: file hashes when asked, and its stream bytes from `start` into the sink. */
/* Records why file i is not the regular file of its expected size; 0 when it is. */
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
    if (fstatat(job->rootfd, job->paths[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
        job->codes[i] = CODE_OPEN;
        job->values[i] = errno;
    } else {
        wrong_file(job, i, &st);
    }
}

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
    int fd = openat(job->rootfd, job->paths[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        job->codes[i] = CODE_OPEN;
        job->values[i] = errno;
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        job->codes[i] = CODE_READ;
        job->values[i] = errno;
    } else if (!wrong_file(job, i, &st)) {
        int64_t pos = hash ? 0 : start;
        if (pos && lseek(fd, pos, SEEK_SET) < 0) {
            job->codes[i] = CODE_READ;
            job->values[i] = errno;
            close(fd);
            return;
        }
        if (hash) hashers_start(&job->hashers);
        while (pos < size) {
            size_t want = size - pos < READ_SIZE ? (size_t)(size - pos) : READ_SIZE;
            ssize_t got = read(fd, job->buffer, want);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) {
                job->codes[i] = CODE_READ;
                job->values[i] = errno;
                break;
            }
            if (got == 0) {
                job->codes[i] = CODE_SHORT;
                job->values[i] = pos;
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
        if (hash && job->codes[i] == CODE_OK)
            hashers_finish(&job->hashers, job->digests + i * digest_width(job->hashers.algos));
    }
    close(fd);
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

static PyObject *read_group(PyObject *self, PyObject *args) {
    PyObject *root, *paths_arg, *paths = NULL, *sizes_obj, *starts_obj, *flags_obj;
    int algos;
    long long piece_start, piece_end, piece_length;
    if (!PyArg_ParseTuple(args, "O&OOOOiLLL", PyUnicode_FSConverter, &root, &paths_arg, &sizes_obj,
                          &starts_obj, &flags_obj, &algos, &piece_start, &piece_end, &piece_length))
        return NULL;
    Py_buffer sizes = {0}, starts = {0}, flags = {0};
    PyObject *result = NULL, *digests = NULL, *codes = NULL, *values = NULL;
    Job job;
    memset(&job, 0, sizeof job);
    paths = PySequence_Tuple(paths_arg); /* our own references: the items outlive the GIL-free loop */
    if (!paths) {
        Py_DECREF(root);
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(paths);
    job.rootfd = -1;
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
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(paths, i);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "paths must be bytes");
            goto done;
        }
        job.paths[i] = PyBytes_AS_STRING(item);
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
        for (Py_ssize_t i = 0; i < count && !job.oom; i++) read_one(&job, i);
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
    result = Py_BuildValue("OOOy#y#y#L", digests, codes, values, bytes_or_empty(&job.sink.head),
                           (Py_ssize_t)job.sink.head.len, bytes_or_empty(&job.sink.pieces),
                           (Py_ssize_t)job.sink.pieces.len, bytes_or_empty(&job.sink.tail),
                           (Py_ssize_t)job.sink.tail.len, (long long)job.nbytes);

done:
    if (job.pieces) sink_free(&job.sink);
    if (job.hashers.xxh) XXH3_freeState(job.hashers.xxh);
    PyMem_RawFree(job.buffer);
    PyMem_Free(job.paths);
    if (sizes.obj) PyBuffer_Release(&sizes);
    if (starts.obj) PyBuffer_Release(&starts);
    if (flags.obj) PyBuffer_Release(&flags);
    Py_XDECREF(digests);
    Py_XDECREF(codes);
    Py_XDECREF(values);
    Py_DECREF(paths);
    Py_DECREF(root);
    return result;
}

/* Non-directory entries under the open folder `fd` (which this closes), real subfolders included;
 * `path` holds the folder's path and, on failure, the path of the folder that could not be listed. */
static int64_t count_under(int fd, Buf *path) {
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -1;
    }
    int64_t count = 0;
    size_t base = path->len;
    struct dirent *entry;
    for (errno = 0; (entry = readdir(dir)) != NULL; errno = 0) {
        const char *name = entry->d_name;
        if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
        int is_dir = entry->d_type == DT_DIR;
        if (entry->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        if (!is_dir) {
            count++;
            continue;
        }
        path->len = base;
        if (buf_add(path, (const unsigned char *)"/", 1) || buf_add(path, (const unsigned char *)name, strlen(name) + 1)) {
            errno = ENOMEM;
            break;
        }
        path->len--; /* keep the NUL terminator out of the length */
        int sub = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int64_t below = sub < 0 ? -1 : count_under(sub, path);
        if (below < 0) {
            int saved = errno;
            closedir(dir);
            errno = saved;
            return -1; /* path names the failing folder */
        }
        count += below;
    }
    int failed = errno;
    closedir(dir);
    path->len = base;
    if (failed) {
        errno = failed;
        return -1;
    }
    path->data[base] = 0;
    return count;
}

static PyObject *count_entries(PyObject *self, PyObject *args) {
    PyObject *root;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &root)) return NULL;
    Buf path = {0};
    int64_t count = -1;
    int error = ENOMEM;
    if (buf_add(&path, (const unsigned char *)PyBytes_AS_STRING(root), (size_t)PyBytes_GET_SIZE(root) + 1) == 0) {
        path.len--;
        Py_BEGIN_ALLOW_THREADS
        int fd = open((const char *)path.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        count = fd < 0 ? -1 : count_under(fd, &path);
        error = errno;
        Py_END_ALLOW_THREADS
    }
    PyObject *result = NULL;
    if (count >= 0) {
        result = PyLong_FromLongLong(count);
    } else if (path.data) {
        PyObject *where = PyUnicode_DecodeFSDefaultAndSize((const char *)path.data, (Py_ssize_t)path.len);
        errno = error;
        if (where) PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, where);
        Py_XDECREF(where);
    } else {
        PyErr_NoMemory();
    }
    free(path.data);
    Py_DECREF(root);
    return result;
}

static PyMethodDef methods[] = {
    {"read_group", read_group, METH_VARARGS, "Read a batch of files once, GIL released: file and piece hashes."},
    {"count_entries", count_entries, METH_VARARGS, "Count the non-directory entries under a folder, GIL released."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "release._native", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }

/* Manifest record lines tokenised in C, for verify.
 *
 * Validating every record line with pydantic costs ~9 us, and classifying its path against the
 * layout ~5 us more: on a 158k-file tree that was more time than reading and hashing the files.
 * This module accepts only the canonical form that `manifest.io.record_line` writes, and only
 * paths that are certainly safe; every other line is reported as not fast, and Python parses it
 * in full (pydantic), so the errors and any unusual but valid line behave exactly as before. It
 * decides nothing about the layout either: it cuts `subset/NNNN/ID.ext` into numbers and indexes
 * into the subset and extension lists it is given, and Python checks the rules on those columns.
 *
 * scan_block(data, field, subsets, extensions)
 *   data        one decompressed block of record lines, separated by '\n' (none after the last);
 *               read with the GIL released, and no object made per line
 *   field       the digest to decode: 0 none, 1 xxh3_128, 2 sha256, 3 md5
 *   subsets     tuple of bytes, the image subsets (first path component) to recognise
 *   extensions  tuple of bytes, the extensions to recognise
 * returns (fast, spans, sizes, digests, subset, bucket, ids, ext), one entry per line
 *   fast        bytes: 1 when the line was canonical and parsed here, else 0 (every other column
 *               holds zeros for that line)
 *   spans       bytes of int64 (start, end): the path inside `data` (a fast line), the whole line (not)
 *   sizes       bytes of int64
 *   digests     the selected digest, raw (16 or 32 bytes a line; empty when field is 0)
 *   subset      bytes of int8: index into `subsets`, or -1 when the path is not subset/NNNN/ID.ext
 *               with a listed subset and extension (the layout columns below are then 0)
 *   bucket      bytes of int32: NNNN;  ids: bytes of int64: ID;  ext: bytes of int8: extension index
 *
 * path_layout(blob, ends, subsets, extensions) -> (subset, bucket, ids, ext): the same layout columns
 *   for paths given as one blob and their int64 end offsets (a walked tree's FileTable).
 *
 * concat_spans(data, spans) -> bytes: the spans (int64 start, end pairs) of data, joined in their order
 *   (a build's record lines put back in manifest order after they were read in folder order).
 *
 * check_lines(data) -> (lines, slow): see below; verify's first pass over the whole manifest.
 * line_stats(data, limit) -> (lines, first too long): the reader's line count and bound.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAMES 64

typedef struct {
    const char *p, *end;
} Cursor;

typedef struct {
    const char *name[MAX_NAMES];
    Py_ssize_t len[MAX_NAMES];
    int count;
} Names;

static int literal(Cursor *c, const char *text, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, text, n) != 0) return 0;
    c->p += n;
    return 1;
}

#define LITERAL(c, s) literal(c, s, sizeof(s) - 1)

/* A JSON integer as json.dumps writes it (no leading zeros, no "-0") that fits an int64. */
static int integer(Cursor *c, int signed_ok, int64_t *out) {
    int negative = 0;
    if (signed_ok && c->p < c->end && *c->p == '-') {
        negative = 1;
        c->p++;
    }
    const char *start = c->p;
    uint64_t value = 0; /* 19 digits cannot overflow it */
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && c->p - start < 20) value = value * 10 + (uint64_t)(*c->p++ - '0');
    size_t n = (size_t)(c->p - start);
    if (n == 0 || n > 19 || (n > 1 && *start == '0') || (negative && value == 0) || value > INT64_MAX) return 0;
    *out = negative ? -(int64_t)value : (int64_t)value;
    return 1;
}

/* The value of a lower-case hex digit, -1 for any other byte (upper case too: the models accept lower-case
 * hex only). A table, not branches: the digests are two thirds of every record line. */
static signed char NIBBLE[256];

static void nibble_init(void) {
    memset(NIBBLE, -1, sizeof NIBBLE);
    for (int i = 0; i < 10; i++) NIBBLE['0' + i] = (signed char)i;
    for (int i = 0; i < 6; i++) NIBBLE['a' + i] = (signed char)(10 + i);
}

/* `n` bytes as 2n lower-case hex digits, decoded into `out` unless it is NULL. */
static int hex(Cursor *c, size_t n, unsigned char *out) {
    if ((size_t)(c->end - c->p) < 2 * n) return 0;
    const unsigned char *p = (const unsigned char *)c->p;
    int bad = 0;
    if (out) {
        for (size_t i = 0; i < n; i++) {
            int hi = NIBBLE[p[2 * i]], lo = NIBBLE[p[2 * i + 1]];
            bad |= hi | lo;
            out[i] = (unsigned char)(hi << 4 | lo);
        }
    } else {
        for (size_t i = 0; i < 2 * n; i++) bad |= NIBBLE[p[i]];
    }
    if (bad < 0) return 0;
    c->p += 2 * n;
    return 1;
}

/* Printable ASCII but '"' and '\\' (no JSON escapes), relative, no empty, "." or ".." component. */
static int safe_path(const char *p, size_t n) {
    size_t start = 0;
    if (n == 0) return 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '/') {
            size_t len = i - start;
            if (len == 0 || (len == 1 && p[start] == '.') || (len == 2 && p[start] == '.' && p[start + 1] == '.'))
                return 0;
            start = i + 1;
        } else if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e || p[i] == '\\') {
            return 0;
        }
    }
    return 1;
}

static int find_name(const Names *names, const char *p, size_t n) {
    for (int i = 0; i < names->count; i++)
        if ((size_t)names->len[i] == n && memcmp(names->name[i], p, n) == 0) return i;
    return -1;
}

/* `subset/NNNN/ID.ext` as layout._FAST matches it (ID: 0 or up to 12 digits without a leading zero,
 * ext: [a-z0-9]+), with a listed subset and extension; -1 otherwise. */
static int layout(const char *p, size_t n, const Names *subsets, const Names *exts, int32_t *bucket, int64_t *id,
                  int8_t *ext) {
    const char *end = p + n, *slash = memchr(p, '/', n);
    if (!slash) return -1;
    int subset = find_name(subsets, p, (size_t)(slash - p));
    const char *q = slash + 1;
    if (subset < 0 || end - q < 6 || q[4] != '/') return -1;
    int32_t b = 0;
    for (int i = 0; i < 4; i++) {
        if (q[i] < '0' || q[i] > '9') return -1;
        b = b * 10 + (q[i] - '0');
    }
    q += 5;
    const char *digits = q;
    int64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - digits < 13) v = v * 10 + (*q++ - '0');
    size_t nd = (size_t)(q - digits);
    if (nd == 0 || nd > 12 || (nd > 1 && *digits == '0') || q >= end || *q != '.') return -1;
    const char *e = ++q;
    for (; q < end; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9'))) return -1;
    int x = find_name(exts, e, (size_t)(end - e));
    if (e == end || x < 0) return -1;
    *bucket = b;
    *id = v;
    *ext = (int8_t)x;
    return subset;
}

/* One canonical record line; the path's span and the selected digest. */
static int record(Cursor *c, int field, const char **path, size_t *path_len, int64_t *size, int64_t *mtime,
                  unsigned char *digest) {
    if (!LITERAL(c, "{\"path\":\"")) return 0;
    const char *quote = memchr(c->p, '"', (size_t)(c->end - c->p));
    if (!quote || !safe_path(c->p, (size_t)(quote - c->p))) return 0;
    *path = c->p;
    *path_len = (size_t)(quote - c->p);
    c->p = quote;
    if (!LITERAL(c, "\",\"size\":") || !integer(c, 0, size)) return 0;
    if (!LITERAL(c, ",\"mtime_ns\":") || !integer(c, 1, mtime)) return 0;
    if (!LITERAL(c, ",\"xxh3_128\":\"") || !hex(c, 16, field == 1 ? digest : NULL)) return 0;
    if (!LITERAL(c, "\",\"sha256\":\"") || !hex(c, 32, field == 2 ? digest : NULL)) return 0;
    if (!LITERAL(c, "\",\"md5\":\"") || !hex(c, 16, field == 3 ? digest : NULL)) return 0;
    return LITERAL(c, "\"}") && c->p == c->end;
}

static int names_from(PyObject *tuple, Names *names, const char *what) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) > MAX_NAMES) {
        PyErr_Format(PyExc_TypeError, "%s: a tuple of at most %d bytes expected", what, MAX_NAMES);
        return -1;
    }
    names->count = (int)PyTuple_GET_SIZE(tuple);
    for (int i = 0; i < names->count; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s: bytes expected", what);
            return -1;
        }
        names->name[i] = PyBytes_AS_STRING(item);
        names->len[i] = PyBytes_GET_SIZE(item);
    }
    return 0;
}

/* check_lines(data): the lines of `data` (separated by '\n') that are not canonical records with a
 * certainly safe path, as (index, start, end) for Python to parse in full; the number of lines; and the
 * sum of the sizes of the canonical ones (the header's byte total is checked against it). */
static PyObject *check_lines(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    const char *p = data.buf, *end = p + data.len;
    Py_ssize_t index = 0, nslow = 0, cap = 0, *slow_at = NULL; /* (index, start, end) triples */
    long long total = 0;
    int nomem = 0;
    unsigned char digest[32];
    /* pure C over a buffer the caller keeps alive: the GIL is released, so blocks check on several threads */
    Py_BEGIN_ALLOW_THREADS
    for (;; index++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
        Cursor c = {p, stop};
        const char *path;
        size_t path_len;
        int64_t size, mtime;
        if (!record(&c, 0, &path, &path_len, &size, &mtime, digest)) {
            if (nslow == cap) {
                Py_ssize_t grown = cap ? 2 * cap : 64;
                Py_ssize_t *more = realloc(slow_at, (size_t)grown * 3 * sizeof(Py_ssize_t));
                if (!more) {
                    nomem = 1;
                    break;
                }
                slow_at = more;
                cap = grown;
            }
            slow_at[3 * nslow] = index;
            slow_at[3 * nslow + 1] = (Py_ssize_t)(p - (const char *)data.buf);
            slow_at[3 * nslow + 2] = (Py_ssize_t)(stop - (const char *)data.buf);
            nslow++;
        } else {
            total += size;
        }
        if (!nl) break;
        p = nl + 1;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (nomem) {
        free(slow_at);
        return PyErr_NoMemory();
    }
    PyObject *slow = PyList_New(nslow);
    for (Py_ssize_t i = 0; slow && i < nslow; i++) {
        PyObject *item = Py_BuildValue("(nnn)", slow_at[3 * i], slow_at[3 * i + 1], slow_at[3 * i + 2]);
        if (!item) Py_CLEAR(slow);
        else PyList_SET_ITEM(slow, i, item);
    }
    free(slow_at);
    if (!slow) return NULL;
    return Py_BuildValue("(nNL)", index + 1, slow, total);
}

/* line_stats(data, limit): (lines, first): the number of '\n'-separated lines of `data` and the index of
 * the first one longer than `limit` bytes (-1: none), in one memchr pass (the manifest reader's bound on
 * a line, checked without splitting the block into a million bytes objects). */
static PyObject *line_stats(PyObject *self, PyObject *args) {
    Py_buffer data;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*n", &data, &limit)) return NULL;
    const char *p = data.buf, *end = p + data.len;
    Py_ssize_t index = 0, first = -1;
    for (;; index++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
        if (first < 0 && stop - p > limit) first = index;
        if (!nl) break;
        p = nl + 1;
    }
    PyBuffer_Release(&data);
    return Py_BuildValue("(nn)", index + 1, first);
}

static PyObject *scan_block(PyObject *self, PyObject *args) {
    Py_buffer data;
    PyObject *subsets_arg, *exts_arg, *result = NULL;
    int field;
    Names subsets, exts;
    if (!PyArg_ParseTuple(args, "y*iO!O!", &data, &field, &PyTuple_Type, &subsets_arg, &PyTuple_Type, &exts_arg))
        return NULL;
    PyObject *fast = NULL, *spans = NULL, *sizes = NULL, *digests = NULL, *subset = NULL, *bucket = NULL, *ids = NULL,
             *ext = NULL, *mtimes = NULL;
    if (field < 0 || field > 3) {
        PyErr_Format(PyExc_ValueError, "field: 0 to 3 expected, got %d", field);
        goto done;
    }
    if (names_from(subsets_arg, &subsets, "subsets") || names_from(exts_arg, &exts, "extensions")) goto done;
    const char *start = data.buf, *end = start + data.len;
    Py_ssize_t n = 1;
    for (const char *p = start; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) n++;
    size_t width = field == 0 ? 0 : field == 2 ? 32 : 16;
    fast = PyBytes_FromStringAndSize(NULL, n);
    spans = PyBytes_FromStringAndSize(NULL, n * 16);
    sizes = PyBytes_FromStringAndSize(NULL, n * 8);
    digests = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)width);
    subset = PyBytes_FromStringAndSize(NULL, n);
    bucket = PyBytes_FromStringAndSize(NULL, n * 4);
    ids = PyBytes_FromStringAndSize(NULL, n * 8);
    ext = PyBytes_FromStringAndSize(NULL, n);
    mtimes = PyBytes_FromStringAndSize(NULL, n * 8);
    if (!fast || !spans || !sizes || !digests || !subset || !bucket || !ids || !ext || !mtimes) goto done;
    char *f = PyBytes_AS_STRING(fast);
    int64_t *span = (int64_t *)PyBytes_AS_STRING(spans), *sz = (int64_t *)PyBytes_AS_STRING(sizes);
    int64_t *id = (int64_t *)PyBytes_AS_STRING(ids), *mt = (int64_t *)PyBytes_AS_STRING(mtimes);
    unsigned char *dg = (unsigned char *)PyBytes_AS_STRING(digests);
    int8_t *sub = (int8_t *)PyBytes_AS_STRING(subset), *ex = (int8_t *)PyBytes_AS_STRING(ext);
    int32_t *bk = (int32_t *)PyBytes_AS_STRING(bucket);
    Py_BEGIN_ALLOW_THREADS
    const char *p = start;
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
        Cursor c = {p, stop};
        const char *path = NULL;
        size_t path_len = 0;
        id[i] = bk[i] = ex[i] = 0;
        f[i] = (char)record(&c, field, &path, &path_len, &sz[i], &mt[i], dg + i * width);
        if (f[i]) {
            span[2 * i] = path - start;
            span[2 * i + 1] = (int64_t)(path - start) + (int64_t)path_len;
            sub[i] = (int8_t)layout(path, path_len, &subsets, &exts, &bk[i], &id[i], &ex[i]);
        } else { /* record may have filled some fields before the line failed */
            sz[i] = mt[i] = 0;
            memset(dg + i * width, 0, width);
            span[2 * i] = p - start;
            span[2 * i + 1] = stop - start;
            sub[i] = -1;
        }
        p = stop + 1;
    }
    Py_END_ALLOW_THREADS
    result = PyTuple_Pack(9, fast, spans, sizes, digests, subset, bucket, ids, ext, mtimes);
done:
    Py_XDECREF(mtimes);
    Py_XDECREF(fast);
    Py_XDECREF(spans);
    Py_XDECREF(sizes);
    Py_XDECREF(digests);
    Py_XDECREF(subset);
    Py_XDECREF(bucket);
    Py_XDECREF(ids);
    Py_XDECREF(ext);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *concat_spans(PyObject *self, PyObject *args) {
    Py_buffer data, spans;
    if (!PyArg_ParseTuple(args, "y*y*", &data, &spans)) return NULL;
    const int64_t *span = spans.buf;
    Py_ssize_t n = spans.len / 16, total = 0;
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (span[2 * i] < 0 || span[2 * i + 1] < span[2 * i] || span[2 * i + 1] > data.len) {
            PyErr_SetString(PyExc_ValueError, "spans: (start, end) inside the data expected");
            goto done;
        }
        total += (Py_ssize_t)(span[2 * i + 1] - span[2 * i]);
    }
    result = PyBytes_FromStringAndSize(NULL, total);
    if (!result) goto done;
    char *out = PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        size_t len = (size_t)(span[2 * i + 1] - span[2 * i]);
        memcpy(out, (const char *)data.buf + span[2 * i], len);
        out += len;
    }
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&spans);
    return result;
}

static PyObject *path_layout(PyObject *self, PyObject *args) {
    Py_buffer blob, ends;
    PyObject *subsets_arg, *exts_arg, *result = NULL;
    Names subsets, exts;
    if (!PyArg_ParseTuple(args, "y*y*O!O!", &blob, &ends, &PyTuple_Type, &subsets_arg, &PyTuple_Type, &exts_arg))
        return NULL;
    Py_ssize_t n = ends.len / 8;
    PyObject *subset = NULL, *bucket = NULL, *ids = NULL, *ext = NULL;
    if (names_from(subsets_arg, &subsets, "subsets") || names_from(exts_arg, &exts, "extensions")) goto done;
    subset = PyBytes_FromStringAndSize(NULL, n);
    bucket = PyBytes_FromStringAndSize(NULL, n * 4);
    ids = PyBytes_FromStringAndSize(NULL, n * 8);
    ext = PyBytes_FromStringAndSize(NULL, n);
    if (!subset || !bucket || !ids || !ext) goto done;
    const int64_t *end = ends.buf;
    int8_t *sub = (int8_t *)PyBytes_AS_STRING(subset), *ex = (int8_t *)PyBytes_AS_STRING(ext);
    int32_t *bk = (int32_t *)PyBytes_AS_STRING(bucket);
    int64_t *id = (int64_t *)PyBytes_AS_STRING(ids), start = 0;
    for (Py_ssize_t i = 0; i < n; start = end[i++]) {
        if (start < 0 || end[i] < start || end[i] > blob.len) {
            PyErr_SetString(PyExc_ValueError, "ends: offsets into the blob, ascending, expected");
            goto done;
        }
        id[i] = bk[i] = ex[i] = 0;
        sub[i] = (int8_t)layout((const char *)blob.buf + start, (size_t)(end[i] - start), &subsets, &exts, &bk[i], &id[i],
                                &ex[i]);
    }
    result = PyTuple_Pack(4, subset, bucket, ids, ext);
done:
    Py_XDECREF(subset);
    Py_XDECREF(bucket);
    Py_XDECREF(ids);
    Py_XDECREF(ext);
    PyBuffer_Release(&blob);
    PyBuffer_Release(&ends);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_block", scan_block, METH_VARARGS, "Tokenise the record lines of one block, GIL released: columns."},
    {"concat_spans", concat_spans, METH_VARARGS, "Join spans of a buffer in the order given."},
    {"path_layout", path_layout, METH_VARARGS, "Cut subset/NNNN/ID.ext paths (a blob and end offsets) into columns."},
    {"line_stats", line_stats, METH_VARARGS, "Count the lines of a block; find the first over a limit."},
    {"check_lines", check_lines, METH_VARARGS, "Find the record lines that need a full parse."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "release._records", .m_size = -1,
                                    .m_methods = methods};

PyMODINIT_FUNC PyInit__records(void) {
    nibble_init();
    return PyModule_Create(&module);
}

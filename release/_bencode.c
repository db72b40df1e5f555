/* The bencode decoder of release/bencode.py in C: the same values, limits, token count and faults.
 *
 * decode(data, token_limit, depth_limit) -> (value, tokens, info_start, info_end)
 *   value: int, bytes, list or dict (bytes keys); token_limit < 0: none; info_start/info_end: the byte
 *   range of the top-level b"info" value, -1 when there is none.
 * A fault raises ValueError(offset, kind, detail): bencode.py words the message (one place for them).
 *
 * files_field(blob, spans, sizes) -> bytes
 *   the bencoded v1 `files` list of many files: spans, int64 [start, end) pairs into blob (each file's
 *   path, UTF-8, components split on '/'), sizes int64; each entry `d6:lengthi<n>e4:pathl<c>...ee`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <string.h>

#include "_buf.h"

typedef struct {
    const unsigned char *data;
    Py_ssize_t len, pos;
    long long tokens, token_limit;
    int depth_limit;
    Py_ssize_t info_start, info_end;
} Dec;

static PyObject *fault(Py_ssize_t pos, const char *kind, PyObject *detail) {
    PyObject *args = Py_BuildValue("(nsO)", pos, kind, detail ? detail : Py_None);
    Py_XDECREF(detail);
    if (args) {
        PyErr_SetObject(PyExc_ValueError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static PyObject *fault_bytes(Py_ssize_t pos, const char *kind, const unsigned char *p, Py_ssize_t n) {
    return fault(pos, kind, PyBytes_FromStringAndSize((const char *)p, n));
}

static int count(Dec *d) {
    d->tokens++;
    if (d->token_limit >= 0 && d->tokens > d->token_limit) {
        fault(d->pos, "tokens", NULL);
        return -1;
    }
    return 0;
}

/* the 'e' that ends a list or a dictionary: a token of its own */
static int close_container(Dec *d) {
    if (count(d) < 0) return -1;
    d->pos++;
    return 0;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* the next byte, or -1 (and the fault) at the end of the data */
static int peek(Dec *d) {
    if (d->pos >= d->len) {
        fault(d->pos, "missing_e", NULL);
        return -1;
    }
    return d->data[d->pos];
}

static PyObject *value(Dec *d, int depth);

static PyObject *integer(Dec *d) {
    const unsigned char *p = d->data, *found = NULL;
    Py_ssize_t stop = d->pos + 32 < d->len ? d->pos + 32 : d->len;
    if (d->pos + 1 < stop) found = memchr(p + d->pos + 1, 'e', (size_t)(stop - d->pos - 1));
    if (!found) return fault(d->pos, "int_end", NULL);
    Py_ssize_t start = d->pos + 1, end = found - p, n = end - start;
    const unsigned char *text = p + start;
    int negative = n > 0 && text[0] == '-';
    Py_ssize_t digits = n - negative;
    int ok = digits > 0 && !(text[negative] == '0' && (digits > 1 || negative));
    for (Py_ssize_t i = negative; ok && i < n; i++) ok = is_digit(text[i]);
    if (!ok) return fault_bytes(d->pos, "int_malformed", text, n);
    char buffer[40];
    memcpy(buffer, text, (size_t)n);
    buffer[n] = '\0';
    d->pos = end + 1;
    return PyLong_FromString(buffer, NULL, 10);
}

static PyObject *string(Dec *d) {
    const unsigned char *p = d->data;
    Py_ssize_t stop = d->pos + 12 < d->len ? d->pos + 12 : d->len;
    const unsigned char *colon = d->pos < stop ? memchr(p + d->pos, ':', (size_t)(stop - d->pos)) : NULL;
    if (!colon) return fault(d->pos, "len_colon", NULL);
    Py_ssize_t n = colon - (p + d->pos);
    int ok = n > 0 && !(p[d->pos] == '0' && n > 1);
    long long length = 0;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        ok = is_digit(p[d->pos + i]);
        length = length * 10 + (p[d->pos + i] - '0');
    }
    if (!ok) return fault_bytes(d->pos, "len_malformed", p + d->pos, n);
    Py_ssize_t start = d->pos + n + 1;
    if (length > (long long)(d->len - start)) return fault(d->pos, "str_past_end", PyLong_FromLongLong(length));
    d->pos = start + (Py_ssize_t)length;
    return PyBytes_FromStringAndSize((const char *)p + start, (Py_ssize_t)length);
}

static PyObject *list(Dec *d, int depth) {
    PyObject *items = PyList_New(0);
    if (!items) return NULL;
    d->pos++;
    int next;
    while ((next = peek(d)) != 'e') {
        PyObject *item = next < 0 ? NULL : value(d, depth + 1);
        if (!item || PyList_Append(items, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(items);
            return NULL;
        }
        Py_DECREF(item);
    }
    if (close_container(d) < 0) {
        Py_DECREF(items);
        return NULL;
    }
    return items;
}

static PyObject *dictionary(Dec *d, int depth) {
    PyObject *out = PyDict_New(), *last = NULL;
    if (!out) return NULL;
    d->pos++;
    int next;
    while ((next = peek(d)) != 'e') {
        PyObject *key = NULL, *item = NULL;
        if (next < 0) goto fail;
        if (!is_digit((unsigned char)next)) {
            fault(d->pos, "key_not_string", NULL);
            goto fail;
        }
        if (count(d) < 0 || !(key = string(d))) goto fail;
        if (last) {
            Py_ssize_t a = PyBytes_GET_SIZE(key), b = PyBytes_GET_SIZE(last);
            int cmp = memcmp(PyBytes_AS_STRING(key), PyBytes_AS_STRING(last), (size_t)(a < b ? a : b));
            if (cmp < 0 || (cmp == 0 && a <= b)) {
                Py_INCREF(key);
                fault(d->pos, "key_order", key);
                Py_DECREF(key);
                goto fail;
            }
        }
        Py_ssize_t start = d->pos;
        if (!(item = value(d, depth + 1)) || PyDict_SetItem(out, key, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(key);
            goto fail;
        }
        Py_DECREF(item);
        if (depth == 0 && PyBytes_GET_SIZE(key) == 4 && memcmp(PyBytes_AS_STRING(key), "info", 4) == 0) {
            d->info_start = start;
            d->info_end = d->pos;
        }
        Py_XDECREF(last);
        last = key;
    }
    Py_XDECREF(last);
    last = NULL;
    if (close_container(d) == 0) return out;
fail:
    Py_XDECREF(last);
    Py_DECREF(out);
    return NULL;
}

static PyObject *value(Dec *d, int depth) {
    if (depth >= d->depth_limit) return fault(d->pos, "depth", NULL);
    if (d->pos >= d->len) return fault(d->pos, "end", NULL);
    if (count(d) < 0) return NULL;
    unsigned char lead = d->data[d->pos];
    if (lead == 'i') return integer(d);
    if (lead == 'l') return list(d, depth);
    if (lead == 'd') return dictionary(d, depth);
    if (is_digit(lead)) return string(d);
    return fault_bytes(d->pos, "lead", &lead, 1);
}

static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer data;
    long long token_limit;
    int depth_limit;
    if (!PyArg_ParseTuple(args, "y*Li", &data, &token_limit, &depth_limit)) return NULL;
    Dec d = {data.buf, data.len, 0, 0, token_limit, depth_limit, -1, -1};
    PyObject *result = NULL, *decoded = value(&d, 0);
    if (decoded && d.pos != d.len) {
        Py_CLEAR(decoded);
        fault(d.pos, "trailing", NULL);
    }
    if (decoded) result = Py_BuildValue("(NLnn)", decoded, d.tokens, d.info_start, d.info_end);
    PyBuffer_Release(&data);
    return result;
}

static int put_decimal(Buf *b, long long v) {
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", v);
    return buf_add(b, text, (size_t)n);
}

static int put_entry(Buf *out, const char *path, Py_ssize_t len, long long size) {
    int failed = buf_add(out, "d6:lengthi", 10) | put_decimal(out, size) | buf_add(out, "e4:pathl", 8);
    for (Py_ssize_t at = 0;;) {
        const char *slash = memchr(path + at, '/', (size_t)(len - at));
        Py_ssize_t stop = slash ? slash - path : len;
        failed |= put_decimal(out, stop - at) | buf_add(out, ":", 1) | buf_add(out, path + at, (size_t)(stop - at));
        if (!slash) break;
        at = stop + 1;
    }
    return failed | buf_add(out, "ee", 2);
}

static PyObject *files_field(PyObject *self, PyObject *args) {
    Py_buffer blob, spans, sizes;
    if (!PyArg_ParseTuple(args, "y*y*y*", &blob, &spans, &sizes)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = sizes.len / 8;
    const long long *span = spans.buf, *size = sizes.buf;
    Buf out = {0};
    int failed = 0;
    if (sizes.len % 8 || spans.len != count * 16) {
        PyErr_SetString(PyExc_ValueError, "files_field: spans and sizes disagree");
        goto done;
    }
    failed |= buf_add(&out, "l", 1);
    for (Py_ssize_t i = 0; i < count && !failed; i++) {
        long long start = span[2 * i], end = span[2 * i + 1];
        if (start < 0 || end < start || end > blob.len || size[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "files_field: a span outside the blob or a negative size");
            goto done;
        }
        failed |= put_entry(&out, (const char *)blob.buf + start, (Py_ssize_t)(end - start), size[i]);
    }
    failed |= buf_add(&out, "e", 1);
    if (failed)
        PyErr_NoMemory();
    else
        result = PyBytes_FromStringAndSize(out.data, (Py_ssize_t)out.len);
done:
    free(out.data);
    PyBuffer_Release(&blob);
    PyBuffer_Release(&spans);
    PyBuffer_Release(&sizes);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, "decode(data, token_limit, depth_limit) -> (value, tokens, start, end)"},
    {"files_field", files_field, METH_VARARGS, "files_field(blob, spans, sizes) -> the bencoded v1 files list"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "release._bencode", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__bencode(void) { return PyModule_Create(&module); }

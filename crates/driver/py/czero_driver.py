"""The c7n driver: one long-lived Python process that runs Cloud Custodian policies on request.

Started by the `czero-driver` crate as `python -B -c <this source>` (no file, no writable
path needed). It imports c7n once, then serves JSON lines on stdin/stdout:

  request  {"id": N, "op": "run", "job": {job_id, policy, event, region, account_id,
                                         output_dir, dryrun, timeout, max_captured_bytes,
                                         credentials?: {access_key_id, secret_access_key,
                                                        session_token}}}
           {"id": N, "op": "probe"}
           {"id": N, "op": "cancel"}         (kills the job started by request N, if any)
  answer   {"type": "ready", ...}                        once, after c7n is imported
           {"type": "fatal", "kind": "NotInstalled", "message": ...}   instead, then exit
           {"type": "response", "id": N, "ok": true, "result": {...}}
           {"type": "response", "id": N, "ok": false, "error": {"kind": ..., ...}}
           {"type": "log", "level": ..., "message": ..., "fields": {...}}

Each job runs in a child forked after c7n is imported (and after the policy's resource type,
a boto3 session for its region and the policy itself were loaded in this process), so the
import cost is paid once and every child starts warm. Once nothing has run for a moment, the
next child is forked ahead of time: that spare rehearses the last job (loads its policy,
builds its client) and waits for its job on a pipe; it is thrown away if something new was
loaded here since. A child gets its own session and process group, dies with this process
(PR_SET_PDEATHSIG), writes its stdout/stderr into a pipe whose tail this process keeps
(bounded), sends its result through a second pipe and exits. A job past its timeout is
killed with SIGKILL to its process group. This process stays single-threaded (fork is only
safe without threads), ignores SIGINT/SIGTERM (its owner decides when it stops), dies with
its owner (PR_SET_PDEATHSIG) and exits, killing every child, when stdin closes.

How a job runs (the same path as c7n's Lambda handler, never our own id pinning):
- the policy is loaded through c7n's PolicyLoader (structure, JSON schema), its variables
  expanded and `policy.validate()` called, as `custodian run` does;
- with an event: `policy.push(event, None)`, i.e. the mode's own `run` (assume_member,
  resolve_resources, filters, actions). For --dryrun the policy's actions are removed first
  (LambdaMode.run_resource_set ignores dryrun). `config-rule` takes AWS Config rule
  invocations as they are; EventBridge Config events are resolved as ConfigRuleMode does
  and then filtered and acted on as LambdaMode.run does, without PutEvaluations (there is no
  result token). `config-poll-rule` cannot be driven by an event (UnsupportedMode);
- without an event: `PullMode(policy).run()`, never `policy()` (on a Lambda mode that
  provisions a Lambda).
"""

import json
import os
import signal
import sys
import time

PROTOCOL = 1
PR_SET_PDEATHSIG = 1
DEFAULT_MAX_CAPTURED = 64 * 1024
# A child that already exited is noticed through its result pipe; this bounds the wait when
# something else (a grandchild) keeps that pipe open.
POLL_SECONDS = 1.0
# How soon an answered job that is still exiting is looked at again, to reap it.
REAP_SECONDS = 0.05
# A spare child is forked once nothing has run for this long (so it never competes with a
# running job or delays an answer), and takes jobs up to this size (its job pipe's buffer).
SPARE_IDLE_SECONDS = 0.02
SPARE_MAX_JOB_BYTES = 60 * 1024
# Sessions are cached by c7n for 45 minutes; refresh ours before children would drop it.
SESSION_REFRESH_SECONDS = 30 * 60

EXECUTOR = "c7n-driver"

# botocore ClientError codes that mean "try again later" (throttling, transient service
# faults). A 5xx status counts too, whatever its code.
RETRYABLE_CODES = frozenset([
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "BandwidthLimitExceeded",
    "EC2ThrottledException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
])

CONFIG_ITEM_CHANGE = "Config Configuration Item Change"
CONFIG_COMPLIANCE_CHANGE = "Config Rules Compliance Change"
CONFIG_ITEM_GONE = ("ResourceDeleted", "ResourceNotRecorded", "ResourceDeletedNotRecorded")


class JobError(Exception):
    """A classified failure: kind is InvalidPolicy, UnsupportedMode or Failed."""

    def __init__(self, kind, message, error_type="", retryable=False, mode=""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.error_type = error_type
        self.retryable = retryable
        self.mode = mode

    def to_json(self):
        return {
            "kind": self.kind,
            "message": self.message,
            "error_type": self.error_type,
            "retryable": self.retryable,
            "mode": self.mode,
        }


# --- error classification -------------------------------------------------------------

def exception_type(exc):
    t = type(exc)
    if t.__module__ in ("builtins", "__main__"):
        return t.__qualname__
    return "%s.%s" % (t.__module__, t.__qualname__)


def _retryable_one(exc):
    try:
        from botocore import exceptions as bex
    except ImportError:  # pragma: no cover - c7n always brings botocore
        bex = None
    if bex is not None:
        if isinstance(exc, bex.ClientError):
            response = getattr(exc, "response", None) or {}
            code = (response.get("Error") or {}).get("Code")
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            return code in RETRYABLE_CODES or (isinstance(status, int) and status >= 500)
        # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError, ...
        if isinstance(exc, (bex.ConnectionError, bex.HTTPClientError)):
            # HTTPClientError covers ReadTimeoutError and ConnectionClosedError.
            return True
    try:
        import urllib3.exceptions as uex
        if isinstance(exc, (uex.TimeoutError, uex.ProtocolError, uex.NewConnectionError)):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, (ConnectionError, TimeoutError))


def is_retryable(exc):
    """True for throttling, 5xx, connection and timeout errors, also when they are the
    cause of another exception (c7n wraps some in PolicyExecutionError)."""
    seen = set()
    while exc is not None and id(exc) not in seen and len(seen) < 16:
        seen.add(id(exc))
        if _retryable_one(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def classify(exc, mode=""):
    """The JobError a run-time exception becomes."""
    if isinstance(exc, JobError):
        return exc
    message = str(exc) or repr(exc)
    return JobError("Failed", message, exception_type(exc), is_retryable(exc), mode)


# --- small helpers ----------------------------------------------------------------------

def _prctl_pdeathsig():
    """Ask the kernel to SIGKILL this process when its parent (thread) dies."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]


def emit(obj):
    write_all(1, (json.dumps(obj, default=str) + "\n").encode())


def log_event(level, message, **fields):
    emit({"type": "log", "level": level, "message": message, "fields": fields})


def kill_group(pid):
    """SIGKILL a job's process group (falls back to the pid before it called setsid)."""
    try:
        os.killpg(pid, signal.SIGKILL)
        return
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def describe_status(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return "killed by signal %s" % name
    if os.WIFEXITED(status):
        return "exited with status %d" % os.WEXITSTATUS(status)
    return "status %d" % status


def flatten_resources(result):
    """push() returns a list (most modes), a dict of lists (hub modes) or None."""
    if result is None:
        return []
    if isinstance(result, dict):
        out = []
        for v in result.values():
            out.extend(v or [])
        return out
    return list(result)


# --- the job (runs in the forked child) ---------------------------------------------------

class RunLog:
    """custodian-run.log for the whole job.

    c7n writes the run log only inside its execution context (PullMode.run,
    LambdaMode.run_resource_set), so a push that matched nothing, or failed while resolving
    resources, would leave none. This handler appends the `custodian` logger's records to the
    same file while c7n's own handler is not attached (both append, so lines stay in order
    and are never doubled).
    """

    def __init__(self, path):
        import logging

        class _Handler(logging.FileHandler):
            def emit(handler, record):  # noqa: N805 - inner class, handler is self
                for h in logging.getLogger("custodian").handlers:
                    if (h is not handler and isinstance(h, logging.FileHandler)
                            and h.baseFilename == handler.baseFilename):
                        return
                logging.FileHandler.emit(handler, record)

        self.handler = _Handler(path, mode="a", delay=True)
        self.handler.setLevel(logging.DEBUG)
        # c7n's own run log format (c7n.output.LogOutput.log_format).
        self.handler.setFormatter(logging.Formatter(
            "%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
        logging.getLogger("custodian").addHandler(self.handler)

    def close(self):
        import logging
        logging.getLogger("custodian").removeHandler(self.handler)
        self.handler.close()


def configure_child_logging():
    import logging
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    # The format `custodian run` prints.
    handler.setFormatter(logging.Formatter("%(asctime)s: %(name)s:%(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)


# Where botocore would otherwise find credentials; a job handed its own must use only those.
OTHER_CREDENTIAL_SOURCES = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
)


def use_credentials(creds):
    """In a job's child: act with the credentials the job carries (a member role's session
    the worker opened), not the driver's. Environment credentials come first in botocore's
    chain; the sessions cached before the fork hold the driver's, so they are dropped."""
    if not creds:
        return
    from c7n import utils
    for k in OTHER_CREDENTIAL_SOURCES:
        os.environ.pop(k, None)
    os.environ["AWS_ACCESS_KEY_ID"] = creds["access_key_id"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = creds["secret_access_key"]
    if creds.get("session_token"):
        os.environ["AWS_SESSION_TOKEN"] = creds["session_token"]
    else:
        os.environ.pop("AWS_SESSION_TOKEN", None)
    utils.reset_session_cache()


def load_policy(loader, policy_data, job):
    """c7n's own loading path: structure, schema, variables, validate()."""
    from c7n.config import Config
    from c7n.resources.aws import AWS

    if not isinstance(policy_data, dict):
        raise JobError("InvalidPolicy", "the policy must be a mapping, got %s" % (
            type(policy_data).__name__,))
    mode = (policy_data.get("mode") or {}).get("type", "pull") \
        if isinstance(policy_data.get("mode"), dict) else "pull"
    config = Config.empty(
        region=job["region"],
        regions=[job["region"]],
        output_dir=job["output_dir"],
        account_id=job.get("account_id"),
        dryrun=bool(job.get("dryrun")),
        cache_period=0,
    )
    try:
        config = AWS().initialize(config)
        collection = loader.load_data(
            {"policies": [policy_data]}, "job:%s" % job.get("job_id", ""), config=config)
        policies = list(collection or ())
        if len(policies) != 1:
            raise JobError("InvalidPolicy", "expected one policy, c7n loaded %d" % len(policies))
        policy = policies[0]
        policy.expand_variables(policy.get_variables())
        policy.validate()
    except JobError:
        raise
    except Exception as e:
        if is_retryable(e):
            raise classify(e, mode)
        try:
            from botocore.exceptions import BotoCoreError, ClientError
            if isinstance(e, (BotoCoreError, ClientError)):
                raise classify(e, mode)
        except ImportError:  # pragma: no cover
            pass
        raise JobError("InvalidPolicy", "%s: %s" % (exception_type(e), e),
                       exception_type(e), False, mode)
    return policy, mode


def record_actions(policy):
    """Wrap each action's process() so the result names the actions c7n actually ran."""
    ran = []
    for action in policy.resource_manager.actions:
        name = getattr(action, "type", None) or action.name
        original = action.process

        def process(*args, __original=original, __name=name, **kw):
            if __name not in ran:
                ran.append(__name)
            return __original(*args, **kw)

        action.process = process
    return ran


def prepare_event(event):
    """What c7n's Lambda handler (c7n.handler.dispatch_event) does before push: EventBridge
    Scheduler's default detail is the string '{}'; failed API calls are skipped unless
    C7N_SKIP_ERR_EVENT=no. Returns the reason to skip, or None."""
    if event.get("detail") == "{}":
        event["detail"] = {}
    detail = event.get("detail")
    error = detail.get("errorCode") if isinstance(detail, dict) else None
    if error and os.environ.get("C7N_SKIP_ERR_EVENT", "yes") == "yes":
        return "skipping failed operation: %s" % error
    return None


def run_config_rule(policy, event):
    """config-rule mode on an EventBridge AWS Config event.

    c7n's ConfigRuleMode.run expects an AWS Config rule invocation (invokingEvent with a
    resultToken) and reports its verdict with PutEvaluations. An EventBridge event carries no
    token, so the resource is resolved as ConfigRuleMode.resolve_resources does (the config
    source's load_resource on the configuration item) or, for a compliance change, with
    resource_manager.get_resources([resourceId]); it is then filtered and acted on by
    LambdaMode.run, and no evaluation is reported to AWS Config.
    """
    from c7n.policy import LambdaMode

    mode = policy.get_execution_mode()
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    kind = event.get("detail-type")
    invoking = event.get("invokingEvent")
    if invoking is not None:
        item = (json.loads(invoking) if isinstance(invoking, str) else invoking).get(
            "configurationItem")
        kind = "invokingEvent"
    elif kind == CONFIG_ITEM_CHANGE:
        item = detail.get("configurationItem")
    elif kind == CONFIG_COMPLIANCE_CHANGE:
        item = None
    else:
        raise JobError(
            "Failed",
            "config-rule mode takes an AWS Config rule invocation (invokingEvent) or an "
            "EventBridge event with detail-type %r or %r, got detail-type %r" % (
                CONFIG_ITEM_CHANGE, CONFIG_COMPLIANCE_CHANGE, kind),
            "UnsupportedEvent", False, "config-rule")
    if kind != CONFIG_COMPLIANCE_CHANGE and not isinstance(item, dict):
        raise JobError("Failed", "config-rule: the event has no configurationItem",
                       "UnsupportedEvent", False, "config-rule")

    rtype = policy.resource_manager.resource_type.config_type
    if kind == CONFIG_COMPLIANCE_CHANGE:
        event_type = detail.get("resourceType")
        resource_id = detail.get("resourceId")
    else:
        event_type = item.get("resourceType")
        resource_id = item.get("resourceId")
    policy.log.info(
        "config-rule: %s for %s %s; no result token, so no evaluation is reported to AWS "
        "Config (PutEvaluations not called)", kind, event_type, resource_id)
    if event_type and rtype and event_type != rtype:
        policy.log.info("config-rule: event resource type %s is not the policy's %s: "
                        "nothing to do", event_type, rtype)
        return []
    if item is not None and item.get("configurationItemStatus") in CONFIG_ITEM_GONE:
        policy.log.info("config-rule: configuration item status %s: the rule does not apply",
                        item.get("configurationItemStatus"))
        return []

    if item is not None:
        # ConfigRuleMode.resolve_resources reads mode.cfg_event.
        mode.cfg_event = {"configurationItem": item}
    else:
        def resolve(event, _mode=mode, _id=resource_id):
            _mode.assume_member(event)
            if not _id:
                return []
            return _mode.policy.resource_manager.get_resources([_id])
        mode.resolve_resources = resolve
    return LambdaMode.run(mode, event, None)


def execute(policy, mode, event, dryrun):
    """Runs the policy the way c7n would for this input; returns c7n's result."""
    from c7n.policy import PullMode

    if event is None:
        if mode != "pull":
            # As c7n does before a dryrun or provisioning: event filters need an event.
            policy._trim_runtime_filters()
        return PullMode(policy).run()
    if not isinstance(event, dict):
        raise JobError("Failed", "the event must be a JSON object", "UnsupportedEvent",
                       False, mode)
    if mode == "config-poll-rule":
        raise JobError(
            "UnsupportedMode",
            "config-poll-rule reports evaluations to AWS Config on AWS Config's own schedule "
            "with a result token; no EventBridge event can drive it. Use mode periodic (or "
            "run without an event for a pull scan)", "UnsupportedMode", False, mode)
    skip = prepare_event(event)
    if skip:
        policy.log.info("policy:%s %s", policy.name, skip)
        return []
    if dryrun:
        # LambdaMode.run_resource_set ignores options.dryrun: remove the actions instead.
        policy.resource_manager.actions = []
    if mode == "config-rule" and (dryrun or "invokingEvent" not in event):
        return run_config_rule(policy, event)
    return policy.push(event, None)


def finish_output(policy, folder, mode, started_wall, ok):
    """Leaves c7n's layout even where c7n wrote nothing (a push that matched nothing, a
    failure before c7n's execution context) and records which executor ran the policy."""
    from c7n import utils
    from c7n.version import version

    resources_path = os.path.join(folder, "resources.json")
    if ok and not os.path.exists(resources_path):
        with open(resources_path, "w") as fh:
            fh.write("[]")
    md_path = os.path.join(folder, "metadata.json")
    md = None
    if os.path.exists(md_path):
        try:
            with open(md_path) as fh:
                md = json.load(fh)
        except ValueError:
            md = None
    if not isinstance(md, dict):
        ctx = policy.ctx
        ctx.initialize()
        ctx.start_time = started_wall
        md = ctx.get_metadata(include=("metrics",))
    md["executor"] = {"name": EXECUTOR, "c7n": version, "mode": mode}
    with open(md_path, "w") as fh:
        fh.write(utils.dumps(md, indent=2))


def run_job(loader, job, prepared=None):
    """The child's work. Returns the result mapping; raises JobError on failure.
    `prepared` is (policy, mode) when the driver already loaded the policy before forking."""
    from c7n.version import version

    started_wall = time.time()
    if prepared is None:
        prepared = load_policy(loader, job.get("policy"), job)
    policy, mode = prepared
    folder = os.path.join(job["output_dir"], policy.name)
    os.makedirs(folder, exist_ok=True)
    # Every run writes both; one left by an earlier run into the same folder must not pass
    # for this run's (c7n's push writes none when nothing matched).
    for stale in ("resources.json", "metadata.json"):
        try:
            os.unlink(os.path.join(folder, stale))
        except FileNotFoundError:
            pass
    runlog = RunLog(os.path.join(folder, "custodian-run.log"))
    dryrun = bool(job.get("dryrun"))
    ok = False
    try:
        ran = record_actions(policy)
        policy.log.info(
            "policy:%s resource:%s mode:%s region:%s executor:%s c7n:%s%s",
            policy.name, policy.resource_type, mode, job["region"], EXECUTOR, version,
            " dryrun" if dryrun else "")
        try:
            result = execute(policy, mode, job.get("event"), dryrun)
        except JobError as e:
            policy.log.error("policy:%s %s: %s", policy.name, e.kind, e.message)
            raise
        except Exception as e:
            policy.log.exception("error during policy execution")
            raise classify(e, mode)
        resources = flatten_resources(result)
        id_field = policy.resource_manager.get_model().id
        ids = []
        for r in resources:
            rid = r.get(id_field) if isinstance(r, dict) else r
            if rid is not None and str(rid) not in ids:
                ids.append(str(rid))
        ok = True
    finally:
        try:
            finish_output(policy, folder, mode, started_wall, ok)
        except Exception:
            if ok:
                raise
            # Failing already: the job's own error is the one to report.
        runlog.close()
    return {
        "policy": policy.name,
        "mode": mode,
        "resource_type": policy.resource_type,
        "resource_ids": ids,
        "actions": [] if dryrun else ran,
        "c7n_version": version,
        "output_folder": folder,
    }


# --- the driver (parent) ------------------------------------------------------------------

class Job:
    def __init__(self, request_id, job_id, pid, out_fd, res_fd, deadline, timeout, max_bytes,
                 mode, started):
        self.request_id = request_id
        self.job_id = job_id
        self.pid = pid
        self.out_fd = out_fd
        self.res_fd = res_fd
        self.deadline = deadline
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.mode = mode
        self.started = started
        self.tail = bytearray()
        self.output_bytes = 0
        self.result = bytearray()

    def capture(self, data):
        self.output_bytes += len(data)
        self.tail += data
        if len(self.tail) > self.max_bytes:
            del self.tail[:len(self.tail) - self.max_bytes]

    def log_tail(self):
        return self.tail.decode("utf-8", "replace")


class Spare:
    """A child forked ahead of time, waiting for its job on a pipe."""

    def __init__(self, pid, out_r, res_r, job_w, generation):
        self.pid = pid
        self.out_r = out_r
        self.res_r = res_r
        self.job_w = job_w
        self.generation = generation


class Driver:
    def __init__(self, c7n_version, import_seconds):
        import selectors
        from c7n.loader import PolicyLoader
        from c7n.config import Config

        self.c7n_version = c7n_version
        self.import_seconds = import_seconds
        self.sel = selectors.DefaultSelector()
        # One loader for the life of the driver: its schema validator caches the JSON
        # schema per resource type set, and children inherit that cache.
        self.loader = PolicyLoader(Config.empty())
        self.jobs = {}  # pid -> Job
        self.by_request = {}  # request id -> pid
        self.stdin_buf = bytearray()
        self.stdin_open = True
        self.exiting = set()  # pids of answered jobs not reaped yet
        self.warm_types = set()
        self.warm_services = set()  # (region, service)
        self.warm_policies = set()  # canonical JSON of policies loaded once here
        # Bumped whenever warm() loads something new: a spare forked before that lacks it.
        self.generation = 0
        self.spare = None  # a child forked ahead of time, waiting for its job
        self.rehearsal = None  # (policy, region) of the last job: what a spare prepares
        self.idle_since = time.perf_counter()

    # -- warming (before fork, so children inherit it) --
    def warm(self, policy, region):
        """Prepares this process so the next child starts warm: the policy's resource types
        and their JSON schema, and a c7n session for the region with each service's client
        and paginator models loaded (no request is made). See docs/benchmarks.md."""
        try:
            from c7n.provider import get_resource_class
            from c7n.resources import load_resources
            from c7n.structure import StructureParser
            from c7n.credentials import SessionFactory
            from c7n import utils

            rtypes = StructureParser().get_resource_types({"policies": [policy]})
            new = set(rtypes) - self.warm_types
            if new:
                start = time.perf_counter()
                load_resources(list(rtypes))
                self.loader.validator.gen_schema(tuple(sorted(rtypes)))
                self.warm_types |= set(rtypes)
                self.generation += 1
                log_event("debug", "resource types loaded", types=sorted(new),
                          seconds=round(time.perf_counter() - start, 4))
            now = time.time()
            cache = getattr(utils.CONN_CACHE, region, {})
            if cache.get("time", 0) + SESSION_REFRESH_SECONDS < now:
                # c7n drops a cached session after 45 minutes: start a fresh one first.
                setattr(utils.CONN_CACHE, region, {})
                self.warm_services = {k for k in self.warm_services if k[0] != region}
                self.generation += 1
            session = utils.local_session(SessionFactory(region))
            for rtype in rtypes:
                try:
                    service = get_resource_class(rtype).resource_type.service
                except Exception:
                    continue
                if (region, service) in self.warm_services:
                    continue
                start = time.perf_counter()
                client = session.client(service)
                ops = list(client.meta.method_to_api_mapping)
                if ops:
                    client.can_paginate(ops[0])  # loads the paginator model
                self.warm_services.add((region, service))
                self.generation += 1
                log_event("debug", "client models loaded", region=region, service=service,
                          seconds=round(time.perf_counter() - start, 4))
        except Exception as e:  # warming is an optimisation; the child reports real errors
            log_event("debug", "warm-up skipped", error="%s: %s" % (exception_type(e), e))

    def warm_load(self, policy, region):
        """For a job the child must load itself: load the policy once here, without
        validate() or an account lookup, so c7n's lazily built state is inherited warm."""
        key = json.dumps(policy, sort_keys=True, default=str)
        if key in self.warm_policies:
            return
        if len(self.warm_policies) >= 256:
            self.warm_policies.clear()
        self.warm_policies.add(key)
        try:
            from c7n.config import Config
            config = Config.empty(region=region, regions=[region], account_id="000000000000",
                                  output_dir="", cache_period=0)
            collection = self.loader.load_data({"policies": [policy]}, "warm-up", config=config)
            for p in collection or ():
                p.expand_variables(p.get_variables())
        except Exception as e:
            log_event("debug", "warm-up load skipped", error="%s: %s" % (exception_type(e), e))

    # -- requests --
    def handle_line(self, line):
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError as e:
            log_event("error", "unreadable request", error=str(e))
            return
        rid = req.get("id")
        op = req.get("op")
        self.idle_since = time.perf_counter()
        if op == "run":
            self.start_job(rid, req.get("job") or {})
        elif op == "probe":
            emit({"type": "response", "id": rid, "ok": True, "result": self.info()})
        elif op == "cancel":
            pid = self.by_request.get(rid)
            if pid is not None and pid in self.jobs:
                self.finish(self.jobs[pid], "cancel")
        else:
            emit({"type": "response", "id": rid, "ok": False, "error": {
                "kind": "Failed", "message": "unknown op %r" % (op,),
                "error_type": "Protocol", "retryable": False}})

    def info(self):
        return {
            "protocol": PROTOCOL,
            "pid": os.getpid(),
            "c7n": self.c7n_version,
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "import_seconds": self.import_seconds,
            "jobs": [{"job_id": j.job_id, "pid": j.pid} for j in self.jobs.values()],
            "spare": self.spare.pid if self.spare else None,
        }

    def start_job(self, rid, job):
        missing = [k for k in ("policy", "region", "output_dir") if not job.get(k)]
        if missing:
            emit({"type": "response", "id": rid, "ok": False, "error": {
                "kind": "Failed", "message": "job is missing %s" % ", ".join(missing),
                "error_type": "Protocol", "retryable": False}})
            return
        policy = job.get("policy")
        mode = "pull"
        if isinstance(policy, dict) and isinstance(policy.get("mode"), dict):
            mode = policy["mode"].get("type", "pull")
        timeout = job.get("timeout")
        timeout = 900.0 if timeout is None else float(timeout)
        max_bytes = int(job.get("max_captured_bytes") or DEFAULT_MAX_CAPTURED)
        self.warm(policy, job["region"])
        self.rehearsal = (policy, job["region"])

        spare, self.spare = self.spare, None
        if spare is not None:
            payload = json.dumps(job).encode()
            if spare.generation == self.generation and len(payload) <= SPARE_MAX_JOB_BYTES:
                try:
                    # The pipe is empty and larger than the payload: this never blocks.
                    write_all(spare.job_w, b"%d\n" % len(payload) + payload)
                    os.close(spare.job_w)
                    spare.job_w = None
                except OSError:
                    self.discard(spare)
                else:
                    self.track(rid, job, spare.pid, spare.out_r, spare.res_r, timeout,
                               max_bytes, mode, time.perf_counter())
                    return
            else:
                self.discard(spare)

        prepared = None
        if job.get("account_id"):
            # Load and validate here, before forking: a refused policy is answered without a
            # child, and the child starts with its policy already built (c7n's validate()
            # makes no requests). Without an account id c7n would ask STS for it, which
            # must not block this process: the child loads the policy then.
            try:
                prepared = load_policy(self.loader, policy, job)
            except JobError as e:
                if e.kind == "InvalidPolicy":
                    emit({"type": "response", "id": rid, "ok": False, "error": e.to_json(),
                          "log_tail": "", "output_bytes": 0, "seconds": 0.0, "pid": 0})
                    return
                prepared = None  # anything else is the child's to report
            except Exception:
                prepared = None
        else:
            self.warm_load(policy, job["region"])
        started = time.perf_counter()
        pid, out_r, res_r, _ = self.fork(job=job, prepared=prepared)
        self.track(rid, job, pid, out_r, res_r, timeout, max_bytes, mode, started)

    def track(self, rid, job, pid, out_r, res_r, timeout, max_bytes, mode, started):
        j = Job(rid, str(job.get("job_id", "")), pid, out_r, res_r, started + timeout, timeout,
                max_bytes, mode, started)
        self.jobs[pid] = j
        self.by_request[rid] = pid
        self.sel.register(out_r, 1, ("out", pid))
        self.sel.register(res_r, 1, ("res", pid))

    def fork(self, job=None, prepared=None, rehearsal=None):
        """Forks a child that runs `job`, or, without one, a spare that prepares for
        `rehearsal` and then waits for its job on a pipe. Returns (pid, the read ends of
        its output and result pipes, the write end of its job pipe or None)."""
        import gc
        out_r, out_w = os.pipe()
        res_r, res_w = os.pipe()
        job_r, job_w = os.pipe() if job is None else (None, None)
        parent = os.getpid()
        # Objects alive now are never collected in the child: freezing them keeps the
        # child's garbage collector from touching (and copying) the parent's pages.
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                self.child(parent, (out_r, res_r, job_w), out_w, res_w, job, prepared, job_r,
                           rehearsal)
                code = 0
            finally:
                os._exit(code)
        for fd in (out_w, res_w, job_r):
            if fd is not None:
                os.close(fd)
        os.set_blocking(out_r, False)
        os.set_blocking(res_r, False)
        return pid, out_r, res_r, job_w

    def child(self, parent, own, out_w, res_w, job, prepared, job_r, rehearsal):
        """In the forked child: isolate, (as a spare: prepare, then wait for the job), run,
        write the result."""
        import random
        os.setsid()
        _prctl_pdeathsig()
        if os.getppid() != parent:  # the driver died before prctl took effect
            os._exit(1)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # Drop the driver's descriptors: the epoll object, the other jobs' pipes, a spare's.
        self.sel.close()
        fds = [fd for fd in own if fd is not None]
        for other in self.jobs.values():
            fds += [other.out_fd, other.res_fd]
        if self.spare is not None:
            fds += [self.spare.out_r, self.spare.res_r, self.spare.job_w]
        for fd in fds:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.close(out_w)
        random.seed()
        configure_child_logging()
        if job is None:
            job = self.wait_for_job(job_r, rehearsal)
        try:
            use_credentials(job.get("credentials"))
            result = {"ok": True, "result": run_job(self.loader, job, prepared)}
        except JobError as e:
            result = {"ok": False, "error": e.to_json()}
        except BaseException as e:  # anything else escaping is still this job's failure
            result = {"ok": False, "error": classify(e).to_json()}
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        write_all(res_w, json.dumps(result, default=str).encode())
        # Closing the result pipe now (not in _exit, which tears the address space down
        # first) lets the driver answer while this process is still exiting.
        os.close(res_w)

    def wait_for_job(self, job_r, rehearsal):
        """A spare: unless its job is already waiting, go through the motions of the last
        job (load its policy, build its service's client) so the pages they touch are
        copied now rather than while the job runs; then read the job."""
        import logging
        import select
        if rehearsal is not None and not select.select([job_r], [], [], 0)[0]:
            policy, region = rehearsal
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.CRITICAL)
            try:
                from c7n import utils
                from c7n.config import Config
                from c7n.credentials import SessionFactory
                config = Config.empty(region=region, regions=[region], output_dir="",
                                      account_id="000000000000", cache_period=0)
                for p in self.loader.load_data({"policies": [policy]}, "rehearsal",
                                               config=config) or ():
                    p.expand_variables(p.get_variables())
                    p.validate()
                    session = utils.local_session(SessionFactory(region))
                    client = session.client(p.resource_manager.resource_type.service)
                    ops = list(client.meta.method_to_api_mapping)
                    if ops:
                        client.can_paginate(ops[0])
            except Exception:
                pass
            finally:
                root.setLevel(level)
        header = bytearray()
        while not header.endswith(b"\n"):
            b = os.read(job_r, 1)
            if not b:
                os._exit(0)  # discarded before it got a job
            header += b
        size = int(header)
        data = bytearray()
        while len(data) < size:
            b = os.read(job_r, size - len(data))
            if not b:
                os._exit(0)
            data += b
        os.close(job_r)
        return json.loads(bytes(data))

    def make_spare(self):
        """Forks the next job's child ahead of time, while nothing is running."""
        policy, region = self.rehearsal
        pid, out_r, res_r, job_w = self.fork(rehearsal=(policy, region))
        self.spare = Spare(pid, out_r, res_r, job_w, self.generation)

    def discard(self, spare):
        kill_group(spare.pid)
        for fd in (spare.out_r, spare.res_r, spare.job_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.exiting.add(spare.pid)

    # -- events --
    def on_output(self, pid):
        job = self.jobs.get(pid)
        if job is None:
            return
        try:
            data = os.read(job.out_fd, 65536)
        except BlockingIOError:
            return
        if not data:
            self.sel.unregister(job.out_fd)
            os.close(job.out_fd)
            job.out_fd = None
            return
        job.capture(data)

    def on_result(self, pid):
        job = self.jobs.get(pid)
        if job is None:
            return
        try:
            data = os.read(job.res_fd, 65536)
        except BlockingIOError:
            return
        if data:
            job.result += data
            return
        # The child closed its result pipe: it is exiting.
        self.finish(job)

    def drain(self, job):
        for name in ("out_fd", "res_fd"):
            fd = getattr(job, name)
            if fd is None:
                continue
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # BlockingIOError: a straggler still holds the pipe
                    break
                if not data:
                    break
                if name == "out_fd":
                    job.capture(data)
                else:
                    job.result += data
            self.sel.unregister(fd)
            os.close(fd)
            setattr(job, name, None)

    def finish(self, job, outcome=None):
        """Ends a job and answers its request. outcome is None (its result pipe closed),
        "timeout" or "cancel" (nobody waits for an answer).

        First SIGKILL to its process group: whatever the job left behind goes with it, and
        the child itself is exiting or a zombie, so its pid cannot have been reused yet. A
        job that delivered its result is answered at once and reaped later (tearing down
        its address space takes milliseconds nobody needs to wait for); otherwise it is
        reaped first, so a crash can say how the process ended."""
        kill_group(job.pid)
        self.drain(job)
        self.jobs.pop(job.pid, None)
        self.by_request.pop(job.request_id, None)
        self.idle_since = time.perf_counter()
        try:
            result = json.loads(bytes(job.result)) if job.result else None
        except ValueError:
            result = None
        delivered = outcome is None and isinstance(result, dict) and "ok" in result
        status = None
        if delivered:
            self.exiting.add(job.pid)
        else:
            try:
                _, status = os.waitpid(job.pid, 0)
            except ChildProcessError:
                pass
        seconds = time.perf_counter() - job.started
        if outcome == "cancel":
            log_event("info", "job cancelled: killed", job_id=job.job_id, pid=job.pid)
            return
        answer = {"type": "response", "id": job.request_id, "log_tail": job.log_tail(),
                  "output_bytes": job.output_bytes, "seconds": seconds, "pid": job.pid}
        if outcome == "timeout":
            log_event("debug", "job killed: timeout", job_id=job.job_id, pid=job.pid,
                      after=job.timeout)
            answer.update(ok=False, error={
                "kind": "Timeout", "message": "job killed after %.3gs" % job.timeout,
                "after": job.timeout, "retryable": True, "mode": job.mode})
        elif not delivered:
            how = describe_status(status) if status is not None else "vanished"
            log_event("warn", "job process died", job_id=job.job_id, pid=job.pid, status=how)
            answer.update(ok=False, error={
                "kind": "Crashed", "retryable": True, "mode": job.mode,
                "message": "job process %d %s without a result" % (job.pid, how)})
        else:
            answer.update(result)
            if answer.get("ok") and isinstance(answer.get("result"), dict):
                answer["result"]["seconds"] = seconds
        emit(answer)

    def reap_exiting(self):
        """Reaps answered jobs that have finished exiting."""
        for pid in list(self.exiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done == pid:
                self.exiting.discard(pid)

    def on_stdin(self):
        try:
            data = os.read(0, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            self.stdin_open = False
            return
        self.stdin_buf += data
        while True:
            nl = self.stdin_buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self.stdin_buf[:nl])
            del self.stdin_buf[:nl + 1]
            if line.strip():
                self.handle_line(line)

    def check_jobs(self):
        now = time.perf_counter()
        for job in list(self.jobs.values()):
            if now >= job.deadline:
                self.finish(job, "timeout")
                continue
            # Exited while something else (a grandchild) still holds its result pipe?
            # WNOWAIT leaves it a zombie, so finish() can still signal its group safely.
            try:
                info = os.waitid(os.P_PID, job.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = True
            if info is not None:
                self.finish(job)

    def serve(self):
        os.set_blocking(0, False)
        self.sel.register(0, 1, ("stdin", None))
        emit(dict(self.info(), type="ready"))
        while self.stdin_open:
            timeout = POLL_SECONDS if not self.exiting else REAP_SECONDS
            now = time.perf_counter()
            if self.jobs:
                nearest = min(j.deadline for j in self.jobs.values()) - now
                timeout = max(0.0, min(timeout, nearest))
            elif self.spare is None and self.rehearsal is not None:
                idle = now - self.idle_since
                if idle >= SPARE_IDLE_SECONDS:
                    try:
                        self.make_spare()
                    except OSError as e:
                        log_event("warn", "could not fork a spare", error=str(e))
                        self.rehearsal = None
                else:
                    timeout = min(timeout, SPARE_IDLE_SECONDS - idle)
            for key, _ in self.sel.select(timeout):
                kind, pid = key.data
                if kind == "stdin":
                    self.on_stdin()
                elif kind == "out":
                    self.on_output(pid)
                elif kind == "res":
                    self.on_result(pid)
            if self.jobs:
                self.check_jobs()
            if self.exiting:
                self.reap_exiting()
        # stdin closed: our owner is gone or shutting us down. Nothing outlives us.
        if self.spare is not None:
            self.discard(self.spare)
            self.spare = None
        for job in list(self.jobs.values()):
            kill_group(job.pid)
        for pid in [j.pid for j in self.jobs.values()] + list(self.exiting):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        return 0


def main():
    parent = os.environ.get("CZERO_DRIVER_PARENT_PID")
    try:
        _prctl_pdeathsig()
    except OSError as e:
        sys.stderr.write("c7n driver: %s\n" % e)
    if parent and parent.isdigit() and os.getppid() != int(parent):
        return 1  # our owner died while we were starting
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    start = time.perf_counter()
    try:
        import c7n.policy  # noqa: F401
        import c7n.loader  # noqa: F401
        import c7n.config  # noqa: F401
        import c7n.credentials  # noqa: F401
        import c7n.resources  # noqa: F401
        from c7n.resources.aws import AWS  # noqa: F401
        from c7n.version import version
    except BaseException as e:
        emit({"type": "fatal", "kind": "NotInstalled",
              "message": "cannot import c7n with %s (Python %s): %s: %s" % (
                  sys.executable, sys.version.split()[0], exception_type(e), e)})
        return 3
    import logging
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s: %(name)s:%(levelname)s %(message)s")
    return Driver(version, round(time.perf_counter() - start, 4)).serve()


if __name__ == "__main__":
    sys.exit(main())

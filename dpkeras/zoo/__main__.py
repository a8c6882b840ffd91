"""``python -m dpkeras.zoo list | info NAME | fetch NAME [--trust_unverified]``."""

import json

from absl import flags

from dpkeras import cli

FLAGS = flags.FLAGS
flags.DEFINE_bool("trust_unverified", False, "fetch a model whose card has no published sha256 "
                  "(its hash is recorded on first download)")
cli.define_log_level()

USAGE = "usage: python -m dpkeras.zoo list | info NAME | fetch NAME [--trust_unverified]"


def main(argv):
    import dpkeras.zoo as zoo
    from dpkeras.errors import DPKerasError

    cli.setup_logging(FLAGS.log_level)
    args = argv[1:]
    if args == ["list"]:
        for name in zoo.list():
            c = zoo.card(name)
            where = "embedded" if "embedded" in c else "download"
            print(f"{name:24s} {c['format']:20s} {c['descriptor']:10s} {where:9s} "
                  f"{c['description'].split('.')[0]}")
    elif len(args) == 2 and args[0] == "info":
        c = dict(zoo.card(args[1]))
        from dpkeras.zoo.download import cached_path

        c["cache_path"] = cached_path(c)
        print(json.dumps(c, indent=2))
    elif len(args) == 2 and args[0] == "fetch":
        print(zoo.fetch(args[1], FLAGS.trust_unverified))
    else:
        raise DPKerasError(USAGE)


if __name__ == "__main__":
    cli.run_main(main)

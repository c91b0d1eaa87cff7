# Thesis-reproduction workflow (V. Sushko, PhD thesis, Bonn 2024).
#
#   snakemake --cores 2 table_6_5                       # tiny preset (default), CPU
#   snakemake --profile slurm --config preset=paper table_6_5
#   snakemake --cores 1 figures                          # re-render figures from existing results
#
# The rules are thin: they wire files to the command-line entry points of the
# gan_core / downstream packages. See README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/osmis.smk"
include: "workflow/rules/osvos.smk"
include: "workflow/rules/stm.smk"
include: "workflow/rules/synthesis.smk"
include: "workflow/rules/oasis.smk"
include: "workflow/rules/semantic_da.smk"
include: "workflow/rules/oasis_figures.smk"
include: "workflow/rules/sivgan.smk"
include: "workflow/rules/repri.smk"
include: "workflow/rules/tables.smk"


localrules:
    all,
    figures,
    tabulate,
    embedded_davis,


rule all:
    default_target: True
    input:
        table_outputs("table_6_5"),

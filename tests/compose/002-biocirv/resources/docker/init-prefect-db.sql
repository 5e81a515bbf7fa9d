CREATE DATABASE prefect_db OWNER biocirv;
